"""What every exchange module provides: connection plans (URLs, subscription and
heartbeat messages) and a parser from raw frames to `Ticker` or a control signal.

Exchange modules are pure: no sockets, no clocks beyond what they are handed. The
shared runner (sage.market.connection) does the networking; sage.market.live joins the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Protocol

from sage.market.models import Ticker


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


class ExchangeFeed(Protocol):
    exchange: str

    @property
    def symbols(self) -> Sequence[str]: ...

    def plans(self) -> list[ConnectionPlan]: ...

    def parse(self, frame: str | bytes, received_at: datetime) -> Ticker | Control:
        """Raises MalformedMessage (or UnexpectedMessage) for a frame it cannot use."""
        ...


def decimals(raw: Sequence[Any]) -> list[Decimal]:
    """Exact decimals from the strings exchanges send. Anything else (a JSON float would
    carry binary rounding into a price) or a non-finite value makes the frame malformed."""
    for value in raw:
        if type(value) is not str:
            raise MalformedMessage("numeric field is not a string")
    try:
        values = list(map(Decimal, raw))
    except InvalidOperation:
        raise MalformedMessage("numeric field is not a decimal") from None
    for value in values:
        if not value.is_finite():
            raise MalformedMessage("numeric field is not finite")
    return values


def build_ticker(exchange: str, symbol: str, raw: Sequence[Any], event_ms: int, received_at: datetime) -> Ticker:
    """A Ticker from the eight numeric strings every ticker format carries, in the order
    last, bid, ask, 24h change %, high, low, base volume, quote volume."""
    last, bid, ask, change, high, low, base_volume, quote_volume = decimals(raw)
    if last <= 0:
        raise MalformedMessage("ticker with a non-positive last price")
    return Ticker(
        exchange,
        symbol,
        last,
        bid,
        ask,
        change,
        high,
        low,
        base_volume,
        quote_volume,
        datetime.fromtimestamp(event_ms / 1000, UTC),
        received_at,
    )
