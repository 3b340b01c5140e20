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
# string is finite and exact, so it goes on the wire as the exchange wrote it (the same
# value as `str(Decimal(s))`, in the exchange's own digits). Matched once over all fields.
_SEPARATOR = "|"
_plain = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:\|-?[0-9]+(?:\.[0-9]+)?)*").fullmatch


def build_ticker(exchange: str, symbol: str, raw: Sequence[Any], event_ms: int, received_at: datetime) -> Ticker:
    """A Ticker from the eight numeric strings every ticker format carries, in the order
    last, bid, ask, 24h change %, high, low, base volume, quote volume."""
    # _checked, inlined (hot path)
    try:
        joined = _SEPARATOR.join(raw)
    except TypeError:
        raise MalformedMessage("numeric field is not a string") from None
    try:
        last, bid, ask, change, high, low, base_volume, quote_volume = values = list(map(Decimal, raw))
    except InvalidOperation:
        raise MalformedMessage("numeric field is not a decimal") from None
    plain = _plain(joined) is not None
    if not plain:
        for value in values:
            if not value.is_finite():
                raise MalformedMessage("numeric field is not finite")
    if last <= 0:
        raise MalformedMessage("ticker with a non-positive last price")
    ticker = Ticker(
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
    ticker._event_ms = event_ms
    if plain:
        ticker._raw = tuple(raw)
    return ticker
