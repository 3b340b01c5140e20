"""What every exchange module provides: connection plans (URLs, subscription and
heartbeat messages) and a parser from raw frames to `Ticker` or a control signal.

Exchange modules are pure: no sockets, no clocks beyond what they are handed. The
shared runner (sage.market.connection) does the networking; sage.market.live joins the two.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Protocol, runtime_checkable

import msgspec

from sage.market.models import Ticker, exchange_ticker


class MalformedMessage(ValueError):
    """A frame that is not valid for this exchange (bad JSON, missing fields, bad numbers)."""


class UnexpectedMessage(MalformedMessage):
    """Well-formed, but nothing this feed asked for (an unknown event, an unsubscribed symbol)."""


class ControlKind(Enum):
    ACK = "ack"  # a subscription was accepted
    RESPONSE = "response"  # an answer to a heartbeat request (Binance LIST_SUBSCRIPTIONS)
    PONG = "pong"  # application-level pong (Gate.io spot.pong)
    ERROR = "error"  # the exchange rejected a request
    RECONNECT = "reconnect"  # the exchange asks us to move to a new connection


@dataclass(frozen=True, slots=True)
class Control:
    kind: ControlKind
    detail: str = ""


@dataclass(frozen=True)
class HeartbeatPlan:
    """An application-level keep-alive: `message()` sent every `interval` seconds, or only
    after `interval` seconds without any inbound frame when `only_when_quiet`."""

    message: Callable[[], str]
    interval: float
    only_when_quiet: bool = False


@dataclass(frozen=True)
class ConnectionPlan:
    """One WebSocket connection: where to connect and what to send once connected."""

    name: str
    url: str
    subscribe: Callable[[], Sequence[str]]  # built per connection (Gate checks the request time)
    symbols: tuple[str, ...]
    heartbeat: HeartbeatPlan | None = None
    max_lifetime: float | None = None  # reconnect before the exchange's own limit
    send_rate: float = 4.0  # outbound messages per second, at most


# What a feed's typed msgspec decoder raises for a frame it does not take: another shape or not
# JSON (ValidationError is a DecodeError), or text with a lone surrogate, which msgspec cannot
# encode. Such a frame goes to the general parser, which says what it is.
TYPED_DECODE_ERRORS = (msgspec.DecodeError, UnicodeEncodeError)


@dataclass(frozen=True, slots=True)
class TickerDecoder:
    """A feed's typed decoder for its ticker update frame, for the frame hot path
    (sage.market.hot_path). `decode` raises one of `TYPED_DECODE_ERRORS` for any other frame and
    returns an object whose `ticker` holds `symbol` (the exchange's spelling), `last`, `bid`,
    `ask`, `change_pct`, `high`, `low`, `base_volume` and `quote_volume` as strings; the
    event's epoch milliseconds are `event_ms` of the ticker when `time_on_ticker`, else of
    the object itself."""

    decode: Callable[[str | bytes], Any]
    time_on_ticker: bool


class ExchangeFeed(Protocol):
    exchange: str
    ticker_decoder: TickerDecoder | None  # None: every frame takes `parse`

    @property
    def symbols(self) -> Sequence[str]: ...

    def plans(self) -> list[ConnectionPlan]: ...

    def parse(self, frame: str | bytes, received_at: datetime) -> Ticker | Control:
        """Raises MalformedMessage (or UnexpectedMessage) for a frame it cannot use."""
        ...


@runtime_checkable
class DynamicFeed(ExchangeFeed, Protocol):
    """A feed that also takes symbols at runtime (on-demand subscriptions)."""

    dynamic: list[str]  # the on-demand symbols its carrying connection subscribes on open

    def track(self, symbols: Sequence[str]) -> None:
        """Parse tickers for these symbols too."""
        ...

    def dynamic_room(self) -> int:
        """How many on-demand symbols the carrying connection can take."""
        ...

    def control_messages(self, subscribe: bool, symbols: Sequence[str]) -> list[str]:
        """Subscribe (or unsubscribe) requests for `symbols`, in the exchange's format."""
        ...


# Plain decimal text (what exchanges send): a sign, digits, an optional fraction. Such a
# string is a finite, exact decimal, so it can stay a string until a consumer reads the
# number (`Ticker`), and it goes on the wire as the exchange wrote it. Checked with one match
# over the eight fields joined by "|". Written as "digits, optional dot, digits, not ending in
# a dot" (the same language as -?[0-9]+(\.[0-9]+)?) with possessive single-character repeats:
# sre runs those in a tight loop, where an optional group costs its repeat bookkeeping, so
# this form takes about 40 % of the time of the textbook one.
_FIELD = r"-?[0-9]++\.?+[0-9]*+(?<!\.)"
_plain8 = re.compile(r"\|".join([_FIELD] * 8)).fullmatch

# Whether the joined text matches depends only on its shape: which characters are ASCII digits
# (the pattern treats all ten alike) and what the others are. A shape is the UTF-8 of the text
# with every digit turned into "0"; two texts of one shape both match or both fail. An
# exchange's tickers come in few shapes (the digits before the point change rarely, the places
# after it seldom), so the shapes that matched answer most frames with one `translate` and one
# hash (~0.15 us) instead of the regex (~0.45 us over ~100 characters). Bounded: cleared when
# full, which only costs regex runs.
#
# A matched shape maps to the ticker's candle class, which the Ticker carries: one bytes object
# per shape of the whole parts (sign and digits before the point) of the last price and the
# base volume. Two unsigned plain decimals with as many digits before the point compare as text
# as they do as numbers, except that an equal value spelled with more trailing zeros sorts
# after (sage.market.candles checks that case), so candles compare the texts of two tickers of
# one class directly. The class looks only at the two fields candles read: a change in the
# places of another field (Gate.io drops trailing zeros, so its change % and bid vary in
# length) keeps the comparison on text.
DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
plain_shapes: dict[bytes, bytes] = {}
_candle_classes: dict[bytes, bytes] = {}
MAX_PLAIN_SHAPES = 50_000


# The latest event time a ticker can carry: 9999-12-31T23:59:59.999Z, the last millisecond a
# datetime holds. A later one (an exchange sending microseconds, a corrupt frame) is malformed,
# not a ticker whose `event_time` raises when read.
MAX_EVENT_MS = 253_402_300_799_999


def build_ticker(key: tuple[str, str], raw: tuple[Any, ...], event_ms: int, received_at: datetime) -> Ticker:
    """A Ticker from the eight numeric strings every ticker format carries, in the order
    last, bid, ask, 24h change %, high, low, base volume, quote volume. `key` is (exchange, symbol).

    Rejects (MalformedMessage) a field that is not a string, not a decimal, not finite, or a
    last price <= 0, whether the numbers are then kept as text or parsed here."""
    try:
        joined = "|".join(raw)
    except TypeError:
        raise MalformedMessage("numeric field is not a string") from None
    try:
        shape = joined.encode().translate(DIGITS_AS_ZERO)
    except UnicodeEncodeError:  # a lone surrogate: no decimal at all, and the regex says so
        shape = b""
    candle_class = plain_shapes.get(shape) or new_plain_shape(joined, shape)
    if candle_class is not None:
        # The common case: every number parsed when read. A plain decimal is <= 0 exactly when
        # it has a sign or no digit but zeros, so it sorts before "1" ("-" and "0" do, every
        # other digit does not); sage.market.hot_path checks the same.
        last = raw[0]
        if last < "1" and (last[0] == "-" or not last.strip("0.")):
            raise MalformedMessage("ticker with a non-positive last price")
        return exchange_ticker(key, raw, candle_class, event_ms, received_at)
    # Anything else Decimal accepts (exponents, "+1", ".5", surrounding spaces...): parsed now,
    # so a bad value is rejected here; the wire form then carries str(Decimal).
    try:
        values = list(map(Decimal, raw))
    except InvalidOperation:
        raise MalformedMessage("numeric field is not a decimal") from None
    for value in values:
        if not value.is_finite():
            raise MalformedMessage("numeric field is not finite")
    last, bid, ask, change, high, low, base_volume, quote_volume = values
    if last <= 0:
        raise MalformedMessage("ticker with a non-positive last price")
    exchange, symbol = key
    event_time = datetime.fromtimestamp(event_ms / 1000, UTC)
    ticker = Ticker(
        exchange, symbol, last, bid, ask, change, high, low, base_volume, quote_volume, event_time, received_at
    )
    ticker.event_ms = event_ms  # the exchange's milliseconds, not a float round trip through the datetime
    return ticker


def new_plain_shape(joined: str, shape: bytes) -> bytes | None:
    """The regex for a shape not seen yet; a match keeps the shape with its candle class."""
    if _plain8(joined) is None:
        return None
    if len(plain_shapes) >= MAX_PLAIN_SHAPES:
        plain_shapes.clear()
    fields = shape.split(b"|")
    name = _whole_part(fields[0]) + b"|" + _whole_part(fields[6])  # b"00000|000" (a sign stays in it)
    candle_class = plain_shapes[shape] = _candle_classes.setdefault(name, name)
    return candle_class


def _whole_part(field: bytes) -> bytes:
    return field.partition(b".")[0]
