"""The offline provider: a deterministic answer written from the market context.

It lets the embedded default (no ANTHROPIC_API_KEY) answer real questions with no
network: it reads the question's intent (prices, movers, sentiment, portfolio, or an
overview), states the context's figures in the same format as the prompt (so the
grounding check verifies them), says what it has no data for, and answers in Korean when
the question is Korean. Same question + same context = same answer, token for token.
With tools offered it runs the same tool loop as Claude (see offline_tools): a question
about last week calls get_candles, "alert me when ..." calls create_alert, "what's 0.5 of
my BTC worth" calls calculate, and the answer is written from the results.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from decimal import Decimal

from sage.chat.context import ChatContext, PriceFact
from sage.chat.formatting import fmt_number, fmt_pct, fmt_price, fmt_time
from sage.chat.providers.base import Finished, ModelEvent, ModelRequest, TextDelta, ToolUse, Usage
from sage.chat.providers.offline_tools import answer_from_tools, plan_call
from sage.portfolio.service import PortfolioSummary

_HANGUL = re.compile(r"[가-힣]")
_INTENTS: dict[str, tuple[str, ...]] = {
    "portfolio": (
        "portfolio",
        "my position",
        "holding",
        "p&l",
        "pnl",
        "profit",
        "loss",
        "포트폴리오",
        "수익",
        "손익",
        "보유",
    ),
    "sentiment": ("fear", "greed", "sentiment", "mood", "index", "공포", "탐욕", "심리", "지수"),
    "movers": ("best", "worst", "top", "gainer", "loser", "mover", "perform", "compare", " vs", "비교", "상승", "하락"),
    "price": ("price", "how much", "trading", "worth", "quote", "가격", "얼마", "시세"),
}


def _intents(question: str) -> set[str]:
    lowered = question.lower()
    return {name for name, words in _INTENTS.items() if any(word in lowered for word in words)}


class _Writer:
    """Sentences in English or Korean, with figures formatted exactly as the prompt shows them."""

    def __init__(self, korean: bool) -> None:
        self.korean = korean

    def price(self, p: PriceFact) -> str:
        price = f"{fmt_price(p.price)} {p.quote_currency}"
        when = fmt_time(p.as_of)
        if p.change_pct_24h is None:
            text = (
                f"{p.symbol}의 가격은 {price}입니다 ({when} 기준)."
                if self.korean
                else f"{p.symbol} is at {price} (as of {when})."
            )
        else:
            move = fmt_pct(p.change_pct_24h)
            if self.korean:
                text = f"{p.symbol}의 가격은 {price}이며, 24시간 변동률은 {move}입니다 ({when} 기준)."
            else:
                change = p.change_pct_24h
                if change == 0:
                    text = f"{p.symbol} is at {price}, unchanged over 24 hours ({move}) (as of {when})."
                else:
                    direction = "up" if change > 0 else "down"
                    text = f"{p.symbol} is at {price}, {direction} {fmt_pct(abs(change), sign=False)} over 24 hours (as of {when})."
        if p.stale:
            text += (
                " 이 가격은 최신 시세가 아닐 수 있습니다."
                if self.korean
                else " This price is stale: no fresh tick arrived recently."
            )
        if p.diverged:
            text += (
                " 거래소 간 가격 차이가 큽니다."
                if self.korean
                else " The exchanges currently disagree on this price, so treat it with care."
            )
        return text

    def movers(self, prices: list[PriceFact]) -> str | None:
        moving = sorted((p for p in prices if p.change_pct_24h is not None), key=lambda p: p.change_pct_24h or 0)
        if len(moving) < 2:
            return None
        worst, best = moving[0], moving[-1]
        assert best.change_pct_24h is not None and worst.change_pct_24h is not None
        if self.korean:
            return (
                f"24시간 기준 가장 강한 종목은 {best.symbol} ({fmt_pct(best.change_pct_24h)}), "
                f"가장 약한 종목은 {worst.symbol} ({fmt_pct(worst.change_pct_24h)})입니다."
            )
        return (
            f"Over 24 hours the strongest is {best.symbol} ({fmt_pct(best.change_pct_24h)}) "
            f"and the weakest is {worst.symbol} ({fmt_pct(worst.change_pct_24h)})."
        )

    def sentiment(self, context: ChatContext) -> str:
        fg = context.fear_greed
        if fg is None:
            return (
                "공포·탐욕 지수는 지금 확인할 수 없습니다."
                if self.korean
                else "The Fear & Greed Index is not available right now."
            )
        if self.korean:
            return f"암호화폐 공포·탐욕 지수는 {fg.value} ({fg.classification})입니다 ({fmt_time(fg.as_of)} 기준)."
        reading = (
            "investors are fearful, which often comes with selling pressure"
            if fg.value < 45
            else "investors are greedy, which often comes with stretched prices"
            if fg.value > 55
            else "sentiment is roughly neutral"
        )
        return (
            f"The Crypto Fear & Greed Index is {fg.value} ({fg.classification}) as of {fmt_time(fg.as_of)}: {reading}."
        )

    def portfolio(self, summary: PortfolioSummary) -> list[str]:
        cash = fmt_number(summary.cash, 2)
        if not summary.positions:
            return [
                f"모의 포트폴리오에는 보유 종목이 없고 현금 {cash} {summary.base_currency}만 있습니다."
                if self.korean
                else f"Your shadow portfolio holds no coins yet: it is all cash, {cash} {summary.base_currency}."
            ]
        if summary.cash == 0 and summary.net_deposits == 0:
            return self._holdings(summary)  # valued without a ledger: holdings only
        return [*self._holdings(summary), self._ledger(summary)]

    def _ledger(self, summary: PortfolioSummary) -> str:
        cash, equity = fmt_number(summary.cash, 2), fmt_number(summary.equity, 2)
        realized = fmt_number(summary.realized_pnl, 2, sign=True)
        ret = fmt_number(summary.total_return, 2, sign=True)
        ret_pct = f" ({fmt_pct(summary.total_return_pct)})" if summary.total_return_pct is not None else ""
        if self.korean:
            return f"현금 {cash}를 더한 포트폴리오 총액은 {equity}, 실현 손익은 {realized}, 총 수익은 {ret}{ret_pct}입니다."
        return f"With {cash} in cash, the portfolio's equity is {equity}; realized P&L {realized}, total return {ret}{ret_pct}."

    def _holdings(self, summary: PortfolioSummary) -> list[str]:
        total_pct = f" ({fmt_pct(summary.total_pnl_pct)})" if summary.total_pnl_pct is not None else ""
        value, cost = fmt_number(summary.total_value, 2), fmt_number(summary.total_cost, 2)
        pnl = fmt_number(summary.total_pnl, 2, sign=True)
        if self.korean:
            lines = [f"모의 포트폴리오의 평가액은 {value}, 매입 원가는 {cost}, 손익은 {pnl}{total_pct}입니다."]
        else:
            lines = [f"Your shadow portfolio is worth {value} against a cost of {cost}: P&L {pnl}{total_pct}."]
        ranked = sorted(summary.positions, key=lambda r: r.value if r.value is not None else Decimal(-1), reverse=True)
        for row in ranked:
            quantity = f"{row.quantity.normalize():f}"
            if row.value is None or row.pnl is None:
                lines.append(
                    f"- {row.symbol}: {quantity} (현재 가격 없음)"
                    if self.korean
                    else f"- {row.symbol}: {quantity} held, no current price."
                )
                continue
            pct = f" ({fmt_pct(row.pnl_pct)})" if row.pnl_pct is not None else ""
            lines.append(
                f"- {row.symbol}: {quantity}, {fmt_number(row.value, 2)} ({fmt_number(row.pnl, 2, sign=True)}{pct})"
                if self.korean
                else f"- {row.symbol}: {quantity} worth {fmt_number(row.value, 2)}, P&L {fmt_number(row.pnl, 2, sign=True)}{pct}."
            )
        if not summary.priced_all:
            lines.append(
                "가격이 없는 종목은 합계에서 제외했습니다."
                if self.korean
                else "Positions without a current price are left out of the totals."
            )
        return lines

    def no_market(self) -> str:
        return (
            "지금은 실시간 시세를 볼 수 없어서 가격을 말씀드릴 수 없습니다."
            if self.korean
            else "I can't see live market data right now, so I won't quote any prices."
        )

    def missing(self, symbols: tuple[str, ...]) -> str:
        names = ", ".join(symbols)
        return f"{names}에 대한 데이터는 없습니다." if self.korean else f"I have no market data for {names}."

    def no_portfolio(self) -> str:
        return (
            "아직 모의 포트폴리오에 보유 종목이 없습니다."
            if self.korean
            else "You have no positions in your shadow portfolio yet; add some and I can value them."
        )

    def disclaimer(self) -> str:
        return (
            "투자 조언이 아닌 시장 정보입니다." if self.korean else "This is market information, not financial advice."
        )


def compose_answer(question: str, context: ChatContext) -> str:
    """The offline answer to `question` (pure and deterministic)."""
    writer = _Writer(korean=bool(_HANGUL.search(question)))
    intents = _intents(question)
    prices = list(context.prices)
    mentioned = [p for p in prices if p.symbol in context.mentioned]
    overview = not intents and not context.mentioned
    if mentioned:
        focus = mentioned
    elif intents & {"portfolio", "sentiment"} and "movers" not in intents:
        focus = []  # "what's my portfolio worth?" is about the portfolio, not every price
    else:
        focus = prices
    parts: list[str] = []
    if not context.market_available:
        parts.append(writer.no_market())
    if "portfolio" in intents:
        parts.extend(writer.portfolio(context.portfolio) if context.portfolio else [writer.no_portfolio()])
    if ("movers" in intents or overview) and (line := writer.movers(focus)) is not None:
        parts.append(line)
    parts.extend(writer.price(p) for p in focus)
    if context.missing:
        parts.append(writer.missing(context.missing))
    if "sentiment" in intents or (overview and context.fear_greed is not None):
        parts.append(writer.sentiment(context))
    if overview and context.portfolio is not None:
        parts.extend(writer.portfolio(context.portfolio))
    parts.append(writer.disclaimer())
    return "\n".join(parts)


def chunks(text: str, words_per_chunk: int = 3) -> list[str]:
    """Split into word groups that concatenate back to `text` exactly."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    return ["".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)]


class OfflineModel:
    name = "offline"
    model = "sage-offline-1"
    offline = True

    def __init__(self, *, words_per_chunk: int = 3, chunk_delay_seconds: float = 0.0) -> None:
        self.words_per_chunk = words_per_chunk
        self.chunk_delay_seconds = chunk_delay_seconds

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        question = next((t.content for t in reversed(request.turns) if t.role == "user"), "")
        if request.allow_tools and request.tools and not request.rounds:
            call = plan_call(question, request.context)
            if call is not None and call.name in {tool.name for tool in request.tools}:
                yield ToolUse(call)
                yield Finished("tool_use", Usage())
                return
        if request.rounds:
            writer = _Writer(korean=bool(_HANGUL.search(question)))
            text = "\n".join([*answer_from_tools(request, writer.korean), writer.disclaimer()])
        else:
            text = compose_answer(question, request.context)
        for piece in chunks(text, self.words_per_chunk):
            yield TextDelta(piece)
            await asyncio.sleep(self.chunk_delay_seconds)  # at least one loop turn per chunk, like a network stream
        yield Finished("end_turn", Usage())

    async def aclose(self) -> None:
        return None
