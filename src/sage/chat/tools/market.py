"""Market tools: get_price, get_candles, get_fear_greed, over small protocols.

Symbols are checked against the market's symbol catalog (the same `SymbolValidator` as the
portfolio and alerts): a symbol no followed exchange lists, or one Sage has no price for, is
named in the result (`unknown`), and a call where nothing is known is an error result.
Candle windows are checked before any query: start before end, inside the stored history,
at most `MAX_CANDLES` bars (the model is told to pick a coarser interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sage.chat.formatting import fmt_time
from sage.chat.grounding import Facts
from sage.chat.tools.base import Tool, ToolCaller, ToolError, ToolOutput
from sage.errors import SageError
from sage.market.history import INTERVALS
from sage.market.models import Candle, ConsolidatedPrice
from sage.market.reader import FearGreedQuote, MarketReader, SymbolValidator

MAX_SYMBOLS = 10
MAX_CANDLES = 200

Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]


class CandleSource(Protocol):
    async def candles_between(
        self, symbol: str, *, interval: str, start: datetime, end: datetime, limit: int
    ) -> Sequence[Candle]: ...


class FearGreedHistory(Protocol):
    async def fear_greed_history(self, limit: int = 30) -> Sequence[FearGreedQuote]:
        """Newest first."""
        ...


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class PriceArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] = Field(
        min_length=1, max_length=MAX_SYMBOLS, description="Symbols such as 'BTC', 'ETH/USDT' (quote defaults to USDT)"
    )


class CandleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(min_length=1, max_length=41, description="e.g. 'BTC/USDT' or 'BTC'")
    interval: Interval = Field(description="Bar length")
    start: datetime = Field(description="ISO 8601 start (UTC if no offset), e.g. '2026-11-15T00:00:00Z'")
    end: datetime | None = Field(default=None, description="ISO 8601 end, exclusive; default: now")


class FearGreedArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(default=1, ge=1, le=30, description="How many daily readings, newest first (1 = today only)")


class MarketTools:
    def __init__(
        self,
        *,
        prices: MarketReader,
        symbols: SymbolValidator,
        candles: CandleSource,
        fear_greed: FearGreedHistory,
        history_days: int,
    ) -> None:
        self.prices = prices
        self.symbols = symbols
        self.candles = candles
        self.fear_greed = fear_greed
        self.history_days = history_days

    def tools(self) -> list[Tool[Any]]:
        return [
            Tool(
                "get_price",
                "Live consolidated price of one or more symbols across exchanges, with the 24h change, "
                "the time of the price, per-exchange prices, and flags: `stale` (no fresh tick) and "
                "`diverged` (exchanges disagree). Use it for any symbol not in the context.",
                PriceArgs,
                self.get_price,
            ),
            Tool(
                "get_candles",
                f"OHLCV bars of one symbol between two times from Sage's stored history (the last "
                f"{self.history_days} days). At most {MAX_CANDLES} bars per call: pick the interval so that "
                f"(end - start) / interval <= {MAX_CANDLES} (a week: 1h; a month: 4h or 1d). "
                "Use it for 'how did X do last week', highs and lows, trends.",
                CandleArgs,
                self.get_candles,
            ),
            Tool(
                "get_fear_greed",
                "The Crypto Fear & Greed Index (0 = extreme fear, 100 = extreme greed): the latest daily "
                "readings, newest first, up to 30 days.",
                FearGreedArgs,
                self.get_fear_greed,
            ),
        ]

    async def _listed(self, raw: str) -> str:
        try:
            return await self.symbols.require(raw)
        except SageError as exc:  # unlisted (422) or the catalog not loaded yet (503): the model reads why
            raise ToolError(exc.message) from None

    async def get_price(self, args: PriceArgs, caller: ToolCaller) -> ToolOutput:
        wanted: list[str] = []
        unlisted: list[str] = []
        for raw in args.symbols:
            try:
                symbol = await self._listed(raw)
            except ToolError:
                unlisted.append(raw)
                continue
            if symbol not in wanted:
                wanted.append(symbol)
        quotes = {q.symbol: q for q in await self.prices.consolidated(wanted)} if wanted else {}
        unknown = unlisted + [s for s in wanted if s not in quotes]
        if not quotes:
            raise ToolError(
                f"No price for {', '.join(unknown)}: Sage does not track {'it' if len(unknown) == 1 else 'them'}"
            )
        rows: list[dict[str, Any]] = []
        priced: list[Any] = []
        for symbol in wanted:
            quote = quotes.get(symbol)
            if quote is None:
                continue
            row: dict[str, Any] = {
                "symbol": symbol,
                "price": str(quote.price),
                "change_pct_24h": None if quote.change_pct_24h is None else str(quote.change_pct_24h),
                "as_of": quote.as_of.isoformat(),
                "stale": quote.stale,
                "diverged": quote.diverged,
            }
            if isinstance(quote, ConsolidatedPrice):
                row["exchanges"] = {
                    name: {"last": str(t.last), "bid": str(t.bid), "ask": str(t.ask)}
                    for name, t in sorted(quote.exchanges.items())
                }
                row["spread_pct"] = str(quote.spread_pct)
            rows.append(row)
            priced.append(quote)
        data: dict[str, Any] = {"prices": rows}
        if unknown:
            data["unknown"] = unknown
        summary = ", ".join(f"{r['symbol']} {r['price']}" for r in rows)
        if unknown:
            summary += f"; unknown: {', '.join(unknown)}"

        def ground(facts: Facts) -> None:
            for quote in priced:
                facts.add_ticker(quote.symbol, price=quote.price, change_pct=quote.change_pct_24h, as_of=quote.as_of)

        return ToolOutput(data, summary, ground)

    async def get_candles(self, args: CandleArgs, caller: ToolCaller) -> ToolOutput:
        symbol = await self._listed(args.symbol)
        step = timedelta(seconds=INTERVALS[args.interval])
        start = _utc(args.start)
        end = _utc(args.end) if args.end is not None else caller.now
        if end > caller.now:
            end = caller.now  # the future has no candles yet: clip rather than refuse
        if start >= end:
            raise ToolError(f"start ({start.isoformat()}) must be before end ({end.isoformat()}) and in the past")
        oldest = caller.now - timedelta(days=self.history_days)
        if end <= oldest:
            raise ToolError(f"Sage keeps {self.history_days} days of candles; the range ends before {oldest.date()}")
        start = max(start, oldest)
        bars = -(-(end - start) // step)
        if bars > MAX_CANDLES:
            raise ToolError(
                f"That is {bars} {args.interval} bars; at most {MAX_CANDLES} per call: use a coarser interval "
                "or a shorter range"
            )
        candles = await self.candles.candles_between(
            symbol, interval=args.interval, start=start, end=end, limit=MAX_CANDLES
        )
        what = f"{symbol} {args.interval} candles, {fmt_time(start)} to {fmt_time(end)}"
        if not candles:
            return ToolOutput(
                {"symbol": symbol, "interval": args.interval, "candles": [], "note": "no stored candles in this range"},
                f"{what}: none stored",
            )
        first, last = candles[0], candles[-1]
        high = max(c.high for c in candles)
        low = min(c.low for c in candles)
        change = None if first.open == 0 else (last.close - first.open) / first.open * 100
        data = {
            "symbol": symbol,
            "interval": args.interval,
            "exchange": first.exchange,
            "columns": ["start", "open", "high", "low", "close", "volume"],
            "candles": [
                [c.start.isoformat(), str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume)]
                for c in candles
            ],
            "summary": {
                "open": str(first.open),
                "close": str(last.close),
                "high": str(high),
                "low": str(low),
                "change_pct": None if change is None else str(round(change, 4)),
            },
        }

        def ground(facts: Facts) -> None:
            facts.add_candles(symbol, candles)

        return ToolOutput(data, f"{what}: {len(candles)} bars", ground)

    async def get_fear_greed(self, args: FearGreedArgs, caller: ToolCaller) -> ToolOutput:
        readings = list(await self.fear_greed.fear_greed_history(args.days))
        if not readings:
            raise ToolError("No Fear & Greed readings are stored yet")
        data = {
            "readings": [
                {"value": r.value, "classification": r.classification, "as_of": r.as_of.isoformat()} for r in readings
            ]
        }
        latest = readings[0]
        summary = f"Fear & Greed {latest.value} ({latest.classification})" + (
            f", {len(readings)} days" if len(readings) > 1 else ""
        )

        def ground(facts: Facts) -> None:
            facts.add_fear_greed(latest.value, latest.classification, as_of=latest.as_of, history=readings[1:])

        return ToolOutput(data, summary, ground)
