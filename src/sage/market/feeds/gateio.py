"""Gate.io API v4 spot: the `spot.tickers` channel.

Protocol (Gate.io "Spot WebSocket v4" documentation):
- Request `{"time": <s>, "id": N, "channel": "spot.tickers", "event": "subscribe",
  "payload": ["BTC_USDT", ...]}`; the answer repeats channel/event and carries `error`
  (null on success, else `{"code", "message"}`), which is what must be checked.
- Updates: `{"time", "time_ms", "channel": "spot.tickers", "event": "update", "result":
  {"currency_pair", "last", "lowest_ask", "highest_bid", "change_percentage",
  "base_volume", "quote_volume", "high_24h", "low_24h"}}`, values as strings.
- Gate drops idle connections: an application `spot.ping` about every 15 s is answered
  with a `spot.pong` message. A `{"type": "upgrade"}` notice announces a server upgrade;
  we move to a new connection when we see it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
import orjson

from sage.market.feeds.base import (
    MAX_EVENT_MS,
    TYPED_DECODE_ERRORS,
    ConnectionPlan,
    Control,
    ControlKind,
    HeartbeatPlan,
    MalformedMessage,
    TickerDecoder,
    UnexpectedMessage,
    build_ticker,
)
from sage.market.models import Ticker
from sage.market.symbols import split_symbol

EXCHANGE = "gateio"
# The eight numbers of a ticker (WebSocket `spot.tickers` and REST `spot/tickers` alike), in
# the order `build_ticker` takes them
TICKER_FIELDS = (
    "last",
    "highest_bid",
    "lowest_ask",
    "change_percentage",
    "high_24h",
    "low_24h",
    "base_volume",
    "quote_volume",
)
CHANNEL = "spot.tickers"
# One pair per request: Gate answers a request with one error, so an unlisted pair in a
# batch could cost the whole batch; alone it costs only itself.
PAIRS_PER_SUBSCRIBE = 1

_RECONNECT_UPGRADE = Control(ControlKind.RECONNECT, "upgrade")
_ACK = Control(ControlKind.ACK)
_PONG = Control(ControlKind.PONG)


class _TickerResult(msgspec.Struct, gc=False):
    """The fields of a `spot.tickers` result Sage keeps; msgspec skips the others in C. Declared
    in the order Gate.io sends them: msgspec tries the field after the last one found first."""

    symbol: str = msgspec.field(name="currency_pair")
    last: str
    ask: str = msgspec.field(name="lowest_ask")
    bid: str = msgspec.field(name="highest_bid")
    change_pct: str = msgspec.field(name="change_percentage")
    base_volume: str
    quote_volume: str
    high: str = msgspec.field(name="high_24h")
    low: str = msgspec.field(name="low_24h")


class _TickerUpdate(msgspec.Struct, gc=False):
    event_ms: int = msgspec.field(name="time_ms")
    channel: Literal["spot.tickers"]
    event: Literal["update"]
    ticker: _TickerResult = msgspec.field(name="result")


# Nearly every frame is a well-formed ticker update: decoded straight into the strings Sage
# keeps (about half the time of `orjson.loads` into dicts). A frame of any other shape or type
# (an update with only `time`, too) fails this decoder and goes through the general parser,
# which gives it its control message or rejects it with the reason, exactly as before.
_decode_ticker_update = msgspec.json.Decoder(_TickerUpdate).decode


def currency_pair(symbol: str) -> str:
    """ "BTC/USDT" -> "BTC_USDT"."""
    base, quote = split_symbol(symbol)
    return f"{base}_{quote}"


def subscribe_message(pairs: Sequence[str], request_id: int, now: float, event: str = "subscribe") -> str:
    return orjson.dumps(
        {"time": int(now), "id": request_id, "channel": CHANNEL, "event": event, "payload": list(pairs)}
    ).decode()


def ping_message(now: float) -> str:
    return orjson.dumps({"time": int(now), "channel": "spot.ping"}).decode()


class GateioFeed:
    exchange = EXCHANGE
    ticker_decoder: TickerDecoder | None = TickerDecoder(_decode_ticker_update, time_on_ticker=False)

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        url: str,
        ping_seconds: float = 15.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._symbols = tuple(symbols)
        self.url = url
        self.ping_seconds = ping_seconds
        self._clock = wall_clock
        self._by_pair = {currency_pair(s): (EXCHANGE, s) for s in self._symbols}  # -> Ticker.key
        self._ids = itertools.count(1)
        self.dynamic: list[str] = []  # on-demand symbols, re-subscribed after a reconnect

    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    def track(self, symbols: Sequence[str]) -> None:
        for symbol in symbols:
            self._by_pair[currency_pair(symbol)] = (EXCHANGE, symbol)

    def dynamic_room(self) -> int:
        return 1_000_000  # Gate documents no per-connection channel limit

    def control_messages(self, subscribe: bool, symbols: Sequence[str]) -> list[str]:
        if subscribe:
            return self.subscribe_messages(symbols)
        pairs = [currency_pair(s) for s in symbols]
        now = self._clock()
        return [
            subscribe_message(pairs[i : i + 100], next(self._ids), now, "unsubscribe")
            for i in range(0, len(pairs), 100)
        ]

    def plans(self) -> list[ConnectionPlan]:
        return [
            ConnectionPlan(
                name=f"{EXCHANGE}-0",
                url=self.url,
                subscribe=lambda: self.subscribe_messages((*self._symbols, *self.dynamic)),
                symbols=self._symbols,
                heartbeat=HeartbeatPlan(lambda: ping_message(self._clock()), self.ping_seconds),
            )
        ]

    def subscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        """Stamped when sent: Gate rejects a request whose `time` is more than 60 s off."""
        pairs = [currency_pair(s) for s in symbols]
        now = self._clock()
        return [
            subscribe_message(pairs[i : i + PAIRS_PER_SUBSCRIBE], next(self._ids), now)
            for i in range(0, len(pairs), PAIRS_PER_SUBSCRIBE)
        ]

    def parse(self, frame: str | bytes, received_at: datetime) -> Ticker | Control:
        try:
            update = _decode_ticker_update(frame)
        except TYPED_DECODE_ERRORS:
            return self._parse_any(frame, received_at)
        r = update.ticker
        key = self._by_pair.get(r.symbol)
        if key is None or not 0 < update.event_ms <= MAX_EVENT_MS:
            return self._parse_any(frame, received_at)  # raises, with the reason
        return build_ticker(
            key,
            (
                r.last,
                r.bid,
                r.ask,
                r.change_pct,
                r.high,
                r.low,
                r.base_volume,
                r.quote_volume,
            ),
            update.event_ms,
            received_at,
        )

    def _parse_any(self, frame: str | bytes, received_at: datetime) -> Ticker | Control:
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON") from exc
        if type(msg) is not dict:
            raise MalformedMessage("not a JSON object")
        channel = msg.get("channel")
        event = msg.get("event")
        if channel == CHANNEL and event == "update":
            return self._ticker(msg, received_at)
        if msg.get("type") == "upgrade":
            return _RECONNECT_UPGRADE
        error = msg.get("error")
        if error:
            if type(error) is dict:
                return Control(ControlKind.ERROR, f"code {error.get('code')}: {error.get('message')}")
            return Control(ControlKind.ERROR, str(error))
        if channel == "spot.pong":
            return _PONG
        if event in ("subscribe", "unsubscribe"):
            return _ACK
        raise UnexpectedMessage(f"unexpected message on channel {channel!r}")

    def _ticker(self, msg: dict[str, Any], received_at: datetime) -> Ticker:
        r = msg.get("result")
        if type(r) is not dict:
            raise MalformedMessage("ticker update without a result object")
        key = self._by_pair.get(r.get("currency_pair"))  # type: ignore[arg-type]
        if key is None:
            raise UnexpectedMessage(f"ticker for unsubscribed pair {r.get('currency_pair')!r}")
        event_ms = msg.get("time_ms")
        if type(event_ms) is not int:
            seconds = msg.get("time")
            if type(seconds) is not int:
                raise MalformedMessage("ticker update without time_ms or time")
            event_ms = seconds * 1000
        if event_ms <= 0:
            raise MalformedMessage("ticker update with a non-positive time")
        if event_ms > MAX_EVENT_MS:
            raise MalformedMessage("ticker update with a time past the year 9999")
        try:
            raw = tuple(r[name] for name in TICKER_FIELDS)
        except KeyError as exc:
            raise MalformedMessage(f"ticker without field {exc.args[0]!r}") from None
        return build_ticker(key, raw, event_ms, received_at)
