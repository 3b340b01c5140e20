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


class Ticker:
    """The 24 h ticker of one symbol on one exchange, as the exchange reported it.

    Treat it as immutable (`retimed` makes a copy with another event time). Equality, hash
    and repr are those of a dataclass with the twelve constructor fields.

    Exact and lazy (issue 19): a parser keeps the exchange's own decimal strings; `last` ...
    `quote_volume` become `Decimal` the first time something reads them, then stay cached
    (ingestion reads few of them: candles compare the strings of tickers of one candle class,
    floats otherwise, the `Decimal`s only on a float tie and for exact volume sums; the wire
    form carries the strings). The value is `Decimal(text)` either way, so a consumer cannot
    tell the difference (tests/market/test_lazy_ticker.py checks it property-based against
    eager parsing). Parsers only keep strings they checked are plain decimals (so the wire form
    can carry them as the exchange wrote them); anything else is parsed eagerly, and rejected
    there, exactly as before. Likewise the event time is
    held in epoch milliseconds and becomes a `datetime` only when read.

    A hand-written class rather than a dataclass: properties cannot share a name with a
    dataclass field, and construction is the ingestion hot path (see `exchange_ticker`)."""

    __slots__ = (
        "_candle_class",
        "_event_time",
        "_numbers",
        "_text",
        "event_ms",
        "exchange",
        "key",
        "received_at",
        "symbol",
    )

    exchange: str
    symbol: str  # "BASE/QUOTE"
    key: tuple[str, str]  # (exchange, symbol)
    event_ms: int  # the exchange's event time, epoch milliseconds
    received_at: datetime  # when this process read the frame
    # last, bid, ask, change_pct, high, low, base_volume, quote_volume: the exchange's strings
    # (plain decimals, also the wire form) or None, and their parsed values so far.
    _text: tuple[str, ...] | None
    # With `_text`, its candle class (sage.market.feeds.base): one bytes object per shape of the
    # whole parts of `last` and `base_volume`, so `is` tells two tickers whose price and volume
    # texts compare as text as they do as numbers (sage.market.candles).
    _candle_class: bytes | None
    _numbers: list[Decimal | None] | None
    _event_time: datetime | None

    def __init__(
        self,
        exchange: str,
        symbol: str,
        last: Decimal,
        bid: Decimal,
        ask: Decimal,
        change_pct: Decimal,  # 24 h change in percent, e.g. Decimal("-1.82")
        high: Decimal,
        low: Decimal,
        base_volume: Decimal,
        quote_volume: Decimal,
        event_time: datetime,  # the exchange's event time
        received_at: datetime,
    ) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.key = (exchange, symbol)
        self.event_ms = datetime_to_ms(event_time)
        self.received_at = received_at
        self._text = None
        self._candle_class = None
        self._numbers = [last, bid, ask, change_pct, high, low, base_volume, quote_volume]
        self._event_time = event_time

    def _number(self, index: int) -> Decimal:
        numbers = self._numbers
        if numbers is None:
            numbers = self._numbers = [None, None, None, None, None, None, None, None]
        value = numbers[index]
        if value is None:
            assert self._text is not None  # lazily parsed tickers always carry their strings
            value = numbers[index] = Decimal(self._text[index])
        return value

    @property
    def last(self) -> Decimal:
        return self._number(0)

    @property
    def bid(self) -> Decimal:
        return self._number(1)

    @property
    def ask(self) -> Decimal:
        return self._number(2)

    @property
    def change_pct(self) -> Decimal:
        return self._number(3)

    @property
    def high(self) -> Decimal:
        return self._number(4)

    @property
    def low(self) -> Decimal:
        return self._number(5)

    @property
    def base_volume(self) -> Decimal:
        return self._number(6)

    @property
    def quote_volume(self) -> Decimal:
        return self._number(7)

    @property
    def event_time(self) -> datetime:
        moment = self._event_time
        if moment is None:
            moment = self._event_time = ms_to_datetime(self.event_ms)
        return moment

    @property
    def wire_text(self) -> tuple[str, ...] | None:
        """The eight decimal strings as the exchange sent them, when a parser kept them."""
        return self._text

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.event_time).total_seconds())

    def retimed(self, event_time: datetime) -> Ticker:
        """A copy with another event time (replay stamps updates with the time they are replayed)."""
        copy = _new_ticker(Ticker)
        copy.exchange, copy.symbol, copy.key = self.exchange, self.symbol, self.key
        copy.received_at, copy._text, copy._candle_class = self.received_at, self._text, self._candle_class
        copy._numbers = None if self._numbers is None else list(self._numbers)
        copy.event_ms = datetime_to_ms(event_time)
        copy._event_time = event_time
        return copy

    def _fields(self) -> tuple[object, ...]:
        return (
            self.exchange,
            self.symbol,
            self.last,
            self.bid,
            self.ask,
            self.change_pct,
            self.high,
            self.low,
            self.base_volume,
            self.quote_volume,
            self.event_time,
            self.received_at,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Ticker)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        names = _TICKER_FIELDS
        return "Ticker(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True)) + ")"


_TICKER_FIELDS = (
    "exchange",
    "symbol",
    "last",
    "bid",
    "ask",
    "change_pct",
    "high",
    "low",
    "base_volume",
    "quote_volume",
    "event_time",
    "received_at",
)
_new_ticker = object.__new__


def exchange_ticker(
    key: tuple[str, str], text: tuple[str, ...], candle_class: bytes, event_ms: int, received_at: datetime
) -> Ticker:
    """A parser's Ticker: `text` holds the eight decimal strings in constructor order, each
    already checked to be a plain decimal (`-?digits(.digits)?`), parsed when read;
    `candle_class` is theirs (sage.market.feeds.base). Built without `__init__`: this runs once
    per frame."""
    t = _new_ticker(Ticker)
    t.exchange = key[0]
    t.symbol = key[1]
    t.key = key
    t.event_ms = event_ms
    t.received_at = received_at
    t._text = text
    t._candle_class = candle_class
    t._numbers = None
    t._event_time = None
    return t


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
    return ticker_wire(t, t.event_ms, datetime_to_ms(t.received_at))


def ticker_wire(t: Ticker, event_ms: int, received_ms: int) -> dict[str, Any]:
    """`ticker_to_wire` for callers that already hold the times in milliseconds."""
    return texts_wire(t.exchange, t.symbol, ticker_texts(t), event_ms, received_ms)


def ticker_texts(t: Ticker) -> tuple[str, ...]:
    """The eight numbers as decimal texts: the exchange's own strings when a parser kept them
    (exact, and no Decimal -> str per field), else each `Decimal`'s `str`, which reads back to it."""
    raw = t._text
    if raw is not None:
        return raw
    return (
        str(t.last),
        str(t.bid),
        str(t.ask),
        str(t.change_pct),
        str(t.high),
        str(t.low),
        str(t.base_volume),
        str(t.quote_volume),
    )


def texts_wire(exchange: str, symbol: str, texts: tuple[str, ...], event_ms: int, received_ms: int) -> dict[str, Any]:
    """The wire form of a ticker held as its eight decimal texts (`ticker_texts`)."""
    return {
        "exchange": exchange,
        "symbol": symbol,
        "last": texts[0],
        "bid": texts[1],
        "ask": texts[2],
        "change_pct": texts[3],
        "high": texts[4],
        "low": texts[5],
        "base_volume": texts[6],
        "quote_volume": texts[7],
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
