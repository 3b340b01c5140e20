"""How the offline provider uses tools: the same loop as Claude, decided deterministically.

First round: a question about the past week calls `get_candles` (1h bars over the 7 days
before the context's time), "alert me when X drops below N" calls `create_alert`, and
"what's 0.5 of my BTC worth" calls `calculate` on the position's quantity and price, "how is
my portfolio doing this month vs BTC?" calls `get_performance` (the range read from the
question, a month by default) and "my last trades" calls `get_trades`.
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
_MY_PORTFOLIO = re.compile(r"\bmy\s+(?:shadow\s+|paper\s+)?portfolio\b|내\s*포트폴리오|포트폴리오", re.I)
_PERFORMANCE = re.compile(
    r"\bdoing\b|\bperform|\breturns?\b|\bvs\.?\b|\bversus\b|\bcompared?\b|\bbenchmark|\bdrawdown|수익률|성과|대비",
    re.I,
)
_RANGES = (
    (re.compile(r"\ball[\s-]time\b|\bever\b|\bsince (?:the )?start\b|전체", re.I), "all"),
    (re.compile(r"\b(?:this|last|past|a)\s+year\b|\b12 months\b|1년|올해", re.I), "1y"),
    (re.compile(r"\b(?:3|three)\s+months\b|\bquarter\b|3개월|분기", re.I), "3m"),
    (re.compile(r"\b(?:this|last|past|a)\s+week\b|\b7 days\b|이번\s*주|지난\s*주|일주일", re.I), "1w"),
    (re.compile(r"\btoday\b|\b24\s?h|\b(?:last|past)\s+day\b|오늘|하루", re.I), "1d"),
)
_TRADES = re.compile(
    r"\b(?:my\s+)?(?:last|latest|recent)\s+(?:\d+\s+)?(?:trades|transactions)\b|\bmy\s+(?:trades|transactions)\b|거래\s*내역|최근\s*거래",
    re.I,
)
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
    if _MY_PORTFOLIO.search(question) and _PERFORMANCE.search(question):
        range_ = next((name for pattern, name in _RANGES if pattern.search(question)), "1m")
        return _call("get_performance", {"range": range_})
    if _TRADES.search(question):
        return _call("get_trades", {"limit": 10} | ({"symbol": symbol} if symbol is not None else {}))
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
        elif call.name == "get_performance":
            lines.extend(_performance(data, korean))
        elif call.name == "get_trades":
            lines.extend(_trades(data, korean))
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
    symbol, condition = created["symbol"], "below" if created["kind"] == "price_below" else "above"
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


_RANGE_WORDS = {  # no digits: "30 days" would read as a figure to check
    "1d": ("over the past day", "지난 하루 동안"),
    "1w": ("over the past week", "지난 일주일 동안"),
    "1m": ("over the past month", "지난 한 달 동안"),
    "3m": ("over the past three months", "지난 석 달 동안"),
    "1y": ("over the past year", "지난 한 해 동안"),
    "all": ("since its first activity", "처음부터 지금까지"),
}


def _performance(data: dict[str, Any], korean: bool) -> list[str]:
    english, hangul = _RANGE_WORDS.get(data["range"], (f"over {data['range']}", f"{data['range']} 동안"))
    period = hangul if korean else english
    twr = data.get("time_weighted_return_pct")
    if data.get("note") or twr is None:
        return [
            f"{period} 포트폴리오 수익률을 계산할 데이터가 없습니다."
            if korean
            else f"Sage cannot measure your portfolio's return {period} yet: there is no valued history for it."
        ]
    lines: list[str] = []
    drawdown = data.get("max_drawdown_pct")
    dd = "" if drawdown is None else fmt_pct(Decimal(drawdown), sign=False)
    if korean:
        tail = "" if not dd else f"이고, 최대 낙폭은 {dd}"
        lines.append(f"{period} 포트폴리오의 시간가중 수익률은 {fmt_pct(Decimal(twr))}{tail}입니다.")
    else:
        tail = "" if not dd else f", with a maximum drawdown of {dd}"
        lines.append(f"Your portfolio returned {fmt_pct(Decimal(twr))} {period} (time-weighted){tail}.")
    benchmark, bench = data["benchmark_symbol"], data.get("benchmark_return_pct")
    if bench is None:
        lines.append(
            f"같은 기간 {benchmark} 벤치마크는 가격 이력이 없어 비교할 수 없습니다."
            if korean
            else f"There is no {benchmark} price history for the same period, so I cannot compare with it."
        )
    else:
        gap = Decimal(twr) - Decimal(bench)
        if korean:
            way = "앞섰습니다" if gap >= 0 else "뒤처졌습니다"
            lines.append(f"같은 기간 {benchmark} 보유 수익률은 {fmt_pct(Decimal(bench))}로, 포트폴리오가 {way}.")
        else:
            way = "ahead of" if gap >= 0 else "behind"
            lines.append(
                f"Holding {benchmark} instead returned {fmt_pct(Decimal(bench))}, so your portfolio is {way} BTC."
            )
    if not data.get("complete", True):
        lines.append(
            "일부 구간은 가격 이력이 없어 계산에서 빠졌습니다."
            if korean
            else "Part of the range has no stored prices and is left out of these figures."
        )
    return lines


def _trades(data: dict[str, Any], korean: bool) -> list[str]:
    rows = data.get("transactions") or []
    if not rows:
        return ["포트폴리오에 거래 내역이 없습니다." if korean else "Your portfolio has no transactions yet."]
    lines = [f"최근 거래 {len(rows)}건 (최신순):" if korean else f"Your last {len(rows)} transactions, newest first:"]
    for row in rows:
        when = fmt_time(datetime.fromisoformat(row["executed_at"]))
        quantity = Decimal(row["quantity"])
        if row["symbol"] is None:
            amount = fmt_number(quantity, 2)
            way = "into" if row["kind"] == "deposit" else "out of"
            lines.append(f"- {when}: {row['kind']} of {amount} {way} your portfolio's cash")
            continue
        base = row["symbol"].split("/")[0]
        price = fmt_price(Decimal(row["price"]))
        lines.append(f"- {when}: {row['kind']} {quantity.normalize():f} {base} at {price}")
    return lines
