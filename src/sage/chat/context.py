"""The live market context of one question, and the system prompt built from it.

The context holds exactly the figures the model may state: consolidated prices with 24h
change for the symbols the question mentions (else the configured top symbols), the
Fear & Greed reading, and the user's shadow-portfolio summary (positions, cash, equity,
realized P&L and return, from the ledger); each with its time. The
same object feeds the offline provider, the grounding check (`facts()`) and the answer
cache (`fingerprint()`), so all three agree on what "the context" was.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from sage.chat.formatting import fmt_number, fmt_pct, fmt_price, fmt_time, quantize, significant
from sage.chat.grounding.facts import Facts
from sage.chat.mentions import mentioned_symbols
from sage.market.reader import FearGreedQuote, MarketReader, PriceQuote
from sage.portfolio.service import PortfolioSummary

__all__ = [
    "ChatContext",
    "ContextBuilder",
    "MarketReader",
    "PriceFact",
    "SentimentFact",
    "fmt_number",
    "fmt_pct",
    "fmt_price",
    "fmt_time",
    "mentioned_symbols",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriceFact:
    symbol: str
    price: Decimal
    change_pct_24h: Decimal | None
    as_of: datetime
    stale: bool
    diverged: bool

    @classmethod
    def of(cls, quote: PriceQuote) -> PriceFact:
        return cls(quote.symbol, quote.price, quote.change_pct_24h, quote.as_of, quote.stale, quote.diverged)

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote_currency(self) -> str:
        return self.symbol.split("/")[1]


@dataclass(frozen=True)
class SentimentFact:
    value: int
    classification: str
    as_of: datetime

    @classmethod
    def of(cls, reading: FearGreedQuote) -> SentimentFact:
        return cls(reading.value, reading.classification, reading.as_of)


@dataclass(frozen=True)
class ChatContext:
    generated_at: datetime
    prices: tuple[PriceFact, ...] = ()
    missing: tuple[str, ...] = ()  # asked for, no data
    fear_greed: SentimentFact | None = None
    portfolio: PortfolioSummary | None = None
    mentioned: tuple[str, ...] = ()
    market_available: bool = True

    # -- the prompt ---------------------------------------------------------------------------------
    def data_lines(self) -> list[str]:
        lines: list[str] = []
        if self.prices:
            lines.append("Consolidated prices across exchanges, with 24h change:")
            for p in self.prices:
                change = f", 24h change {fmt_pct(p.change_pct_24h)}" if p.change_pct_24h is not None else ""
                flags = (" [STALE: no fresh tick]" if p.stale else "") + (
                    " [exchanges disagree by more than the divergence threshold]" if p.diverged else ""
                )
                lines.append(
                    f"- {p.symbol}: {fmt_price(p.price)} {p.quote_currency}{change} (as of {fmt_time(p.as_of)}){flags}"
                )
        elif not self.market_available:
            lines.append("Market prices: unavailable right now.")
        if self.missing:
            lines.append("No market data for: " + ", ".join(self.missing) + ".")
        if self.fear_greed is not None:
            fg = self.fear_greed
            lines.append(
                f"Crypto Fear & Greed Index: {fg.value} ({fg.classification}) (as of {fmt_time(fg.as_of)}; 0 = extreme fear, 100 = extreme greed)"
            )
        else:
            lines.append("Crypto Fear & Greed Index: unavailable.")
        if self.portfolio is not None:
            lines.extend(self._portfolio_lines(self.portfolio))
        return lines

    @staticmethod
    def _portfolio_lines(summary: PortfolioSummary) -> list[str]:
        currency = summary.base_currency
        lines = [
            f"The user's shadow portfolio (a paper-trading ledger in {currency}, valued {fmt_time(summary.as_of)}):"
        ]
        if not summary.positions:
            lines.append(f"- no positions: the portfolio is all cash, {fmt_number(summary.cash, 2)} {currency}")
        for row in summary.positions:
            head = f"- {row.symbol}: quantity {row.quantity.normalize():f}, average cost {fmt_price(row.average_cost)}"
            if row.value is None or row.pnl is None or row.price is None:
                lines.append(head + ", no current price")
                continue
            pnl_pct = f" ({fmt_pct(row.pnl_pct)})" if row.pnl_pct is not None else ""
            weight = f", {fmt_pct(row.weight_pct, sign=False)} of the holdings" if row.weight_pct is not None else ""
            lines.append(
                f"{head}, price {fmt_price(row.price)}, value {fmt_number(row.value, 2)}, "
                f"P&L {fmt_number(row.pnl, 2, sign=True)}{pnl_pct}{weight}"
            )
        if summary.positions:
            total_pct = f" ({fmt_pct(summary.total_pnl_pct)})" if summary.total_pnl_pct is not None else ""
            partial = "" if summary.priced_all else " (positions without a current price are left out)"
            lines.append(
                f"Holdings total: value {fmt_number(summary.total_value, 2)}, cost {fmt_number(summary.total_cost, 2)}, "
                f"unrealized P&L {fmt_number(summary.total_pnl, 2, sign=True)}{total_pct}{partial}"
            )
        total_return = f" ({fmt_pct(summary.total_return_pct)})" if summary.total_return_pct is not None else ""
        lines.append(
            f"Cash {fmt_number(summary.cash, 2)}; equity (cash + priced holdings) {fmt_number(summary.equity, 2)}; "
            f"realized P&L {fmt_number(summary.realized_pnl, 2, sign=True)}; fees paid {fmt_number(summary.fees_paid, 2)}; "
            f"total return on net deposits {fmt_number(summary.total_return, 2, sign=True)}{total_return}"
        )
        return lines

    def system_prompt(self) -> str:
        """The live part of the system prompt (after the cached static instructions)."""
        data = "\n".join(self.data_lines())
        return f"Current time: {fmt_time(self.generated_at)}\n\n<market_context>\n{data}\n</market_context>"

    # -- grounding ------------------------------------------------------------------------------------
    def facts(self) -> Facts:
        """The figures this context states, as grounding facts: a new collection per call, so the
        tool results of one answer can be added to it without touching the context."""
        facts = Facts(now=self.generated_at)
        for p in self.prices:
            facts.add_ticker(p.symbol, price=p.price, change_pct=p.change_pct_24h, as_of=p.as_of, source="context")
        if (fg := self.fear_greed) is not None:
            facts.add_fear_greed(fg.value, fg.classification, as_of=fg.as_of, source="context")
        if self.portfolio is not None:
            facts.add_portfolio(self.portfolio, source="context")
        return facts

    # -- caching ----------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Same figures (to a precision) -> same fingerprint.

        Prices to 4 significant digits (0.1 % at worst) and moves to 0.1 percentage point:
        the small ticks of a live market do not defeat the 300 s answer cache, while any
        move a reader would notice does.
        """
        material: dict[str, Any] = {
            "p": [
                [
                    p.symbol,
                    significant(p.price, 4),
                    None if p.change_pct_24h is None else str(quantize(p.change_pct_24h, 1)),
                    p.stale,
                ]
                for p in self.prices
            ],
            "m": list(self.missing),
            "f": None if self.fear_greed is None else [self.fear_greed.value, self.fear_greed.classification],
            "pf": None
            if self.portfolio is None
            else [
                [r.symbol, str(r.quantity.normalize()), str(r.average_cost.normalize())]
                for r in self.portfolio.positions
            ]
            + [str(self.portfolio.cash.normalize()), str(self.portfolio.realized_pnl.normalize())],
            "a": self.market_available,
        }
        return hashlib.sha256(orjson.dumps(material)).hexdigest()[:32]

    def snapshot(self) -> dict[str, Any]:
        """What the answer was grounded in, stored with the message (audits, support)."""
        return {
            "generated_at": self.generated_at.isoformat(),
            "prices": [
                {
                    "symbol": p.symbol,
                    "price": str(p.price),
                    "change_pct_24h": None if p.change_pct_24h is None else str(p.change_pct_24h),
                    "as_of": p.as_of.isoformat(),
                    "stale": p.stale,
                    "diverged": p.diverged,
                }
                for p in self.prices
            ],
            "missing": list(self.missing),
            "fear_greed": None
            if self.fear_greed is None
            else {
                "value": self.fear_greed.value,
                "classification": self.fear_greed.classification,
                "as_of": self.fear_greed.as_of.isoformat(),
            },
            "portfolio": self.portfolio is not None,
            "fingerprint": self.fingerprint(),
        }


PortfolioLookup = Callable[[uuid.UUID], Awaitable[PortfolioSummary | None]]


class ContextBuilder:
    """Gathers the context of one question; every source may fail without failing the chat."""

    def __init__(
        self,
        *,
        market: MarketReader,
        portfolio: PortfolioLookup | None,
        top_symbols: Sequence[str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._market = market
        self._portfolio = portfolio
        self.top_symbols = list(top_symbols)
        self._clock = clock

    async def build(self, *, user_id: uuid.UUID, question: str) -> ChatContext:
        mentioned = mentioned_symbols(question, self.top_symbols)
        wanted = mentioned or self.top_symbols
        prices: tuple[PriceFact, ...] = ()
        fear_greed: SentimentFact | None = None
        market_available = True
        market = self._market
        try:
            quotes = await market.consolidated(wanted)
            by_symbol = {q.symbol: PriceFact.of(q) for q in quotes}
            prices = tuple(by_symbol[s] for s in wanted if s in by_symbol)
        except Exception as exc:
            market_available = False
            log.warning("chat context: prices unavailable", extra={"error": type(exc).__name__})
        try:
            reading = await market.fear_greed()
            fear_greed = SentimentFact.of(reading) if reading is not None else None
        except Exception as exc:
            log.warning("chat context: fear & greed unavailable", extra={"error": type(exc).__name__})
        found = {p.symbol for p in prices}
        missing = tuple(s for s in mentioned if s not in found) if market_available else ()
        summary: PortfolioSummary | None = None
        if self._portfolio is not None:
            try:
                summary = await self._portfolio(user_id)
            except Exception as exc:
                log.warning("chat context: portfolio unavailable", extra={"error": type(exc).__name__})
        return ChatContext(
            generated_at=self._clock(),
            prices=prices,
            missing=missing,
            fear_greed=fear_greed,
            portfolio=summary,
            mentioned=tuple(mentioned),
            market_available=market_available,
        )
