"""How the offline provider uses tools: the same loop as Claude, decided deterministically.

First round: a question about the past week calls `get_candles` (1h bars over the 7 days
before the context's time), "alert me when X drops below N" calls `create_alert`, and
"what's 0.5 of my BTC worth" calls `calculate` on the position's quantity and price.
Next round: the answer is written from the tool results (their JSON, exactly as a real
model reads them), with figures formatted the way the grounding check reads them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from sage.chat.context import ChatContext
from sage.chat.formatting import fmt_number, fmt_pct, fmt_price, fmt_time
from sage.chat.providers.base import ModelRequest, ToolCall, ToolRound

_WEEK = re.compile(
    r"last week|past week|this week|last 7 days|past 7 days|지난\s*주|지난\s*일주일|최근\s*일주일|7일", re.I
)
_ALERT = re.compile(r"\balert\b|\bnotify\b|\blet me know\b|알림|알려", re.I)
_BELOW = re.compile(r"(?:below|under|drops? to|falls? to|아래|이하|밑)", re.I)
_ABOVE = re.compile(r"(?:above|over|rises? to|climbs? to|breaks?|위|이상|넘)", re.I)
_NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*([kK]|천|만)?")
_SHARE = re.compile(r"(\d*\.?\d+)\s*(%|percent)?\s*(?:of|x)\s+my\b", re.I)
_WORDS = {"half": Decimal("0.5"), "quarter": Decimal("0.25"), "third": Decimal(1) / Decimal(3), "절반": Decimal("0.5")}
_SCALE = {"k": Decimal(1000), "K": Decimal(1000), "천": Decimal(1000), "만": Decimal(10_000)}


def plan_call(question: str, context: ChatContext) -> ToolCall | None:
    """The tool the offline model calls for `question` in its first round, if any."""
    symbol = context.mentioned[0] if context.mentioned else None
    if _ALERT.search(question) and symbol is not None:
        below, above = _BELOW.search(question), _ABOVE.search(question)
        threshold = _threshold(question)
        if threshold is not None and (below or above):
            condition = "below" if below and (not above or below.start() < above.start()) else "above"
            return _call("create_alert", {"symbol": symbol, "condition": condition, "threshold": f"{threshold:f}"})
    if _WEEK.search(question):
        end = context.generated_at.replace(second=0, microsecond=0)
        start = end - timedelta(days=7)
        return _call(
            "get_candles",
            {"symbol": symbol or "BTC/USDT", "interval": "1h", "start": start.isoformat(), "end": end.isoformat()},
        )
    share = _share(question)
    if share is not None and context.portfolio is not None:
        held = [p for p in context.portfolio.positions if symbol is None or p.symbol == symbol]
        if held and held[0].price is not None:
            position = held[0]
            quantity = f"{position.quantity.normalize():f}"
            return _call("calculate", {"expression": f"{share} * {quantity} * {position.price}"})
    return None


def _call(name: str, arguments: dict[str, Any]) -> ToolCall:
    return ToolCall(id=f"toolu_offline_{name}", name=name, arguments=orjson.dumps(arguments).decode())


def _threshold(question: str) -> Decimal | None:
    for match in _NUMBER.finditer(question):
        try:
            value = Decimal(match.group(1).replace(",", ""))
        except InvalidOperation:
            continue
        if value > 0:
            return value * _SCALE.get(match.group(2) or "", Decimal(1))
    return None


def _share(question: str) -> str | None:
    lowered = question.lower()
    for word, value in _WORDS.items():
        if f"{word} of my" in lowered or (word == "절반" and word in question):
            return f"{value:f}"[:12]
    match = _SHARE.search(question)
    if match is None:
        return None
    value = Decimal(match.group(1))
    if match.group(2):
        value /= 100
    return f"{value:f}"


def answer_from_tools(request: ModelRequest, korean: bool) -> list[str]:
    """Sentences written from the last round's tool results."""
    lines: list[str] = []
    last: ToolRound = request.rounds[-1]
    for call, result in zip(last.calls, last.results, strict=True):
        data = orjson.loads(result.content)
        if result.is_error:
            error = data.get("error", "unknown error")
            lines.append(
                f"{call.name} 조회에 실패했습니다: {error}" if korean else f"I could not use {call.name}: {error}"
            )
            continue
        arguments = orjson.loads(call.arguments)
        if call.name == "get_candles":
            lines.append(_candles(data, korean))
        elif call.name == "create_alert":
            lines.append(_alert(data["created"], korean))
        elif call.name == "calculate":
            lines.append(_calculation(arguments["expression"], Decimal(data["result"]), korean))
    return lines


def _candles(data: dict[str, Any], korean: bool) -> str:
    symbol = data["symbol"]
    rows = data.get("candles") or []
    if not rows:
        return (
            f"지난 7일 동안 {symbol}의 저장된 캔들이 없습니다."
            if korean
            else f"Sage has no stored candles for {symbol} over the last 7 days."
        )
    summary = data["summary"]
    first, last = rows[0][0], rows[-1][0]
    start = fmt_time(datetime.fromisoformat(first))
    end = fmt_time(datetime.fromisoformat(last))
    opened, closed = Decimal(summary["open"]), Decimal(summary["close"])
    high, low = Decimal(summary["high"]), Decimal(summary["low"])
    change = summary.get("change_pct")
    move = "" if change is None else f" ({fmt_pct(Decimal(change))})"
    if korean:
        return (
            f"지난 7일 동안 {symbol}은 {fmt_price(opened)}에서 {fmt_price(closed)}로 움직였고{move}, "
            f"고가 {fmt_price(high)}, 저가 {fmt_price(low)}였습니다 ({start}부터 {end}까지 {len(rows)}개 1시간 봉)."
        )
    return (
        f"Over the last 7 days {symbol} went from {fmt_price(opened)} to {fmt_price(closed)}{move}, "
        f"with a high of {fmt_price(high)} and a low of {fmt_price(low)} ({len(rows)} 1h bars, {start} to {end})."
    )


def _alert(created: dict[str, Any], korean: bool) -> str:
    symbol, condition = created["symbol"], created["condition"]
    threshold = fmt_price(Decimal(created["threshold"]))
    quote = symbol.split("/")[1]
    if korean:
        way = "아래로 내려가면" if condition == "below" else "위로 올라가면"
        return f"알림을 만들었습니다: {symbol} 가격이 {threshold} {quote} {way} 한 번 알려드립니다."
    way = "drops below" if condition == "below" else "rises above"
    return f"Done: I created an alert. Sage will notify you once when {symbol} {way} {threshold} {quote}."


def _calculation(expression: str, result: Decimal, korean: bool) -> str:
    shown = fmt_number(result, 2)
    if korean:
        return f"계산 결과 {expression} = {shown} 입니다."
    return f"By exact calculation, {expression} = {shown}."
