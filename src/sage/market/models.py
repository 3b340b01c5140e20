"""Normalized market types shared by feeds, the pipeline, the API and chat.

Prices and volumes are `Decimal` end to end: exchanges send them as strings, and a
float round-trip would change the digits a user sees. Times are aware UTC datetimes.

The wire form (`ticker_to_wire` / `ticker_from_wire`) is what goes into Valkey and out
on the live stream: decimals stay strings, times are integer epoch milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

EXCHANGES: tuple[str, ...] = ("binance", "gateio")


def ms_to_datetime(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def datetime_to_ms(moment: datetime) -> int:
    # round, not int: 1.001 s is 1000.999... ms as a float, and truncating loses a millisecond.
    return round(moment.timestamp() * 1000)


@dataclass(slots=True, unsafe_hash=True)
class Ticker:
    """The 24 h ticker of one symbol on one exchange, as the exchange reported it.

    Treat it as immutable (use `dataclasses.replace`). It is not declared frozen only
    because a frozen dataclass sets each field through `object.__setattr__`, which made
    construction the largest single cost on the ingestion hot path; it stays hashable.

    A parser also keeps the exchange's own decimal strings and the event time in epoch ms
    (`_raw`, `_event_ms`: not init arguments, so `dataclasses.replace` and every other
    construction leave them None); the pipeline then encodes the wire form from those
    exact strings instead of converting every Decimal back to text."""

    exchange: str
    symbol: str  # "BASE/QUOTE"
    last: Decimal
    bid: Decimal
    ask: Decimal
    change_pct: Decimal  # 24 h change in percent, e.g. Decimal("-1.82")
    high: Decimal
    low: Decimal
    base_volume: Decimal
    quote_volume: Decimal
    event_time: datetime  # the exchange's event time
    received_at: datetime  # when this process read the frame
    # last, bid, ask, change_pct, high, low, base_volume, quote_volume as the exchange sent them
    _raw: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False, hash=False)
    _event_ms: int | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.exchange, self.symbol)

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.event_time).total_seconds())


@dataclass(frozen=True, slots=True)
class FearGreedReading:
    value: int  # 0 (extreme fear) .. 100 (extreme greed)
    classification: str  # "Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed"
    as_of: datetime


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar built from ticker updates.

    `volume` is the base volume traded during the bar, estimated from the growth of the
    exchange's rolling 24 h volume (ticker channels publish no per-trade volume); it is
    never negative. `ticks` counts the ticker updates that formed the bar.
    """

    exchange: str
    symbol: str
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    ticks: int


@dataclass(frozen=True)
class ConsolidatedPrice:
    """One price per symbol across exchanges (see sage.market.consolidate)."""

    symbol: str  # "BTC/USDT"
    price: Decimal
    change_pct_24h: Decimal | None
    as_of: datetime  # newest exchange event time used
    stale: bool
    diverged: bool
    exchanges: dict[str, Ticker] = field(default_factory=dict)
    spread_pct: Decimal = Decimal(0)  # (max - min) / min * 100 across exchanges


# --- wire form ------------------------------------------------------------------------------


def ticker_to_wire(t: Ticker) -> dict[str, Any]:
    return ticker_wire(t, datetime_to_ms(t.event_time), datetime_to_ms(t.received_at))


def ticker_wire(t: Ticker, event_ms: int, received_ms: int) -> dict[str, Any]:
    """`ticker_to_wire` for callers that already hold the times in milliseconds."""
    raw = t._raw
    if raw is not None:  # the exchange's own strings: exact, and no Decimal -> str per field
        return {
            "exchange": t.exchange,
            "symbol": t.symbol,
            "last": raw[0],
            "bid": raw[1],
            "ask": raw[2],
            "change_pct": raw[3],
            "high": raw[4],
            "low": raw[5],
            "base_volume": raw[6],
            "quote_volume": raw[7],
            "event_time": event_ms,
            "received_at": received_ms,
        }
    return {
        "exchange": t.exchange,
        "symbol": t.symbol,
        "last": str(t.last),
        "bid": str(t.bid),
        "ask": str(t.ask),
        "change_pct": str(t.change_pct),
        "high": str(t.high),
        "low": str(t.low),
        "base_volume": str(t.base_volume),
        "quote_volume": str(t.quote_volume),
        "event_time": event_ms,
        "received_at": received_ms,
    }


def ticker_to_json(t: Ticker) -> bytes:
    return orjson.dumps(ticker_to_wire(t))


class WireFormatError(ValueError):
    """A cached or published ticker that cannot be read back (schema drift, corruption)."""


def ticker_from_wire(data: Any) -> Ticker:
    try:
        return Ticker(
            exchange=str(data["exchange"]),
            symbol=str(data["symbol"]),
            last=Decimal(data["last"]),
            bid=Decimal(data["bid"]),
            ask=Decimal(data["ask"]),
            change_pct=Decimal(data["change_pct"]),
            high=Decimal(data["high"]),
            low=Decimal(data["low"]),
            base_volume=Decimal(data["base_volume"]),
            quote_volume=Decimal(data["quote_volume"]),
            event_time=ms_to_datetime(int(data["event_time"])),
            received_at=ms_to_datetime(int(data["received_at"])),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise WireFormatError(f"not a ticker: {type(exc).__name__}") from exc


def ticker_from_json(raw: bytes) -> Ticker:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireFormatError("not JSON") from exc
    return ticker_from_wire(data)


def fear_greed_to_wire(r: FearGreedReading) -> dict[str, Any]:
    return {"value": r.value, "classification": r.classification, "as_of": datetime_to_ms(r.as_of)}


def fear_greed_from_wire(data: Any) -> FearGreedReading:
    try:
        return FearGreedReading(
            value=int(data["value"]),
            classification=str(data["classification"]),
            as_of=ms_to_datetime(int(data["as_of"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireFormatError(f"not a fear & greed reading: {type(exc).__name__}") from exc
