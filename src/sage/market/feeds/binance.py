"""Binance spot: `<symbol>@ticker` 24 h tickers over combined streams.

Protocol (Binance "WebSocket Streams" documentation):
- Combined streams live at `<base>/stream`; every event is wrapped `{"stream": ..., "data": ...}`.
  Streams are added with `{"method": "SUBSCRIBE", "params": [...], "id": N}`, acknowledged
  with `{"result": null, "id": N}`; a rejected request answers `{"code": N, "msg": ...}`.
- At most 5 inbound messages per second per connection (pings, pongs and control
  messages count), at most 1024 streams per connection: larger symbol lists are sharded.
- The server pings every 20 s and drops a client that has not answered within a minute
  (the websockets library answers pings itself); a connection lives at most 24 h, and a
  `serverShutdown` event announces a planned disconnect.
- `!ticker@arr` was retired on 2026-03-26, so tickers are subscribed per symbol.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

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

EXCHANGE = "binance"
# The eight numbers of a `24hrTicker` event (last, bid, ask, change %, high, low, base and
# quote volume), in the order `build_ticker` takes them
TICKER_FIELDS = ("c", "b", "a", "P", "h", "l", "v", "q")
MAX_STREAMS_PER_CONNECTION = 1024
STREAMS_PER_SUBSCRIBE = 100
CONTROL_MESSAGES_PER_SECOND = 4.0  # below Binance's 5/s so pongs to its pings still fit
MAX_CONNECTION_SECONDS = 23.5 * 3600  # Binance closes at 24 h; move before it does

_RECONNECT_SHUTDOWN = Control(ControlKind.RECONNECT, "serverShutdown")
_ACK = Control(ControlKind.ACK)


class _TickerEvent(msgspec.Struct, gc=False):
    """The fields of a `24hrTicker` event Sage keeps; msgspec skips the others in C. Declared in
    the order Binance sends them: msgspec tries the field after the last one found first."""

    event: Literal["24hrTicker"] = msgspec.field(name="e")
    event_ms: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    change_pct: str = msgspec.field(name="P")
    last: str = msgspec.field(name="c")
    bid: str = msgspec.field(name="b")
    ask: str = msgspec.field(name="a")
    high: str = msgspec.field(name="h")
    low: str = msgspec.field(name="l")
    base_volume: str = msgspec.field(name="v")
    quote_volume: str = msgspec.field(name="q")


class _CombinedTicker(msgspec.Struct, gc=False):
    ticker: _TickerEvent = msgspec.field(name="data")


# Nearly every frame is a well-formed combined-stream ticker: decoded straight into the strings
# Sage keeps (about half the time of `orjson.loads` into dicts). A frame of any other shape or
# type fails this decoder and goes through the general parser, which gives it its control
# message or rejects it with the reason, exactly as for every frame before.
_decode_combined_ticker = msgspec.json.Decoder(_CombinedTicker).decode


def exchange_symbol(symbol: str) -> str:
    """ "BTC/USDT" -> "BTCUSDT" (the `s` field of Binance events)."""
    base, quote = split_symbol(symbol)
    return base + quote


def stream_name(symbol: str) -> str:
    return exchange_symbol(symbol).lower() + "@ticker"


def combined_base_url(url: str) -> str:
    """`<base>/stream` from a base URL, also accepting URLs that already end in /ws or
    /stream (Binance's testnet documents `wss://stream.testnet.binance.vision/ws`)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    for suffix in ("/ws", "/stream"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path + "/stream", "", ""))


def subscribe_messages(streams: Sequence[str], ids: itertools.count[int], method: str = "SUBSCRIBE") -> list[str]:
    out = []
    for i in range(0, len(streams), STREAMS_PER_SUBSCRIBE):
        batch = list(streams[i : i + STREAMS_PER_SUBSCRIBE])
        out.append(orjson.dumps({"method": method, "params": batch, "id": next(ids)}).decode())
    return out


class BinanceFeed:
    exchange = EXCHANGE
    ticker_decoder: TickerDecoder | None = TickerDecoder(_decode_combined_ticker, time_on_ticker=True)

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        base_url: str,
        streams_per_connection: int = MAX_STREAMS_PER_CONNECTION,
        max_connection_seconds: float = MAX_CONNECTION_SECONDS,
        heartbeat_seconds: float = 15.0,
    ) -> None:
        self._symbols = tuple(symbols)
        self.base_url = base_url
        self.streams_per_connection = max(1, min(MAX_STREAMS_PER_CONNECTION, streams_per_connection))
        self.max_connection_seconds = max_connection_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._by_exchange_symbol = {exchange_symbol(s): (EXCHANGE, s) for s in self._symbols}  # -> Ticker.key
        self._ids = itertools.count(1)
        # On-demand symbols (sage.market.subscriptions), carried by the last connection
        # and re-subscribed by it after a reconnect.
        self.dynamic: list[str] = []

    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    def track(self, symbols: Sequence[str]) -> None:
        """Accept tickers for `symbols` too (kept after an unsubscribe, so a late frame
        is still a price and not a malformed message)."""
        for symbol in symbols:
            self._by_exchange_symbol[exchange_symbol(symbol)] = (EXCHANGE, symbol)

    def dynamic_room(self) -> int:
        """Streams the last connection can still take (1024 per connection)."""
        last = len(self._symbols) % self.streams_per_connection
        return self.streams_per_connection - last if last or not self._symbols else 0

    def control_messages(self, subscribe: bool, symbols: Sequence[str]) -> list[str]:
        return subscribe_messages(
            [stream_name(s) for s in symbols], self._ids, "SUBSCRIBE" if subscribe else "UNSUBSCRIBE"
        )

    def plans(self) -> list[ConnectionPlan]:
        url = combined_base_url(self.base_url)
        size = self.streams_per_connection
        shards = [self._symbols[i : i + size] for i in range(0, len(self._symbols), size)] or [()]
        return [
            ConnectionPlan(
                name=f"{EXCHANGE}-{n}",
                url=url,
                subscribe=self._subscriber(shard, carries_dynamic=n == len(shards) - 1),
                symbols=tuple(shard),
                # An idle connection answers LIST_SUBSCRIPTIONS, so a quiet market never
                # looks like a dead socket to the watchdog (cryptofeed#536).
                heartbeat=HeartbeatPlan(self._list_subscriptions, self.heartbeat_seconds, only_when_quiet=True),
                max_lifetime=self.max_connection_seconds,
                send_rate=CONTROL_MESSAGES_PER_SECOND,
            )
            for n, shard in enumerate(shards)
        ]

    def _subscriber(self, shard: Sequence[str], *, carries_dynamic: bool) -> Callable[[], list[str]]:
        streams = [stream_name(s) for s in shard]
        if not carries_dynamic:
            return lambda: subscribe_messages(streams, self._ids)
        return lambda: subscribe_messages(streams + [stream_name(s) for s in self.dynamic], self._ids)

    def _list_subscriptions(self) -> str:
        return orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": next(self._ids)}).decode()

    def parse(self, frame: str | bytes, received_at: datetime) -> Ticker | Control:
        try:
            event = _decode_combined_ticker(frame).ticker
        except TYPED_DECODE_ERRORS:
            return self._parse_any(frame, received_at)
        key = self._by_exchange_symbol.get(event.symbol)
        if key is None or not 0 < event.event_ms <= MAX_EVENT_MS:
            return self._parse_any(frame, received_at)  # raises, with the reason
        return build_ticker(
            key,
            (
                event.last,
                event.bid,
                event.ask,
                event.change_pct,
                event.high,
                event.low,
                event.base_volume,
                event.quote_volume,
            ),
            event.event_ms,
            received_at,
        )

    def _parse_any(self, frame: str | bytes, received_at: datetime) -> Ticker | Control:
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON") from exc
        if type(msg) is not dict:
            raise MalformedMessage("not a JSON object")
        data = msg.get("data")
        payload: dict[str, Any] = msg
        if data is not None:
            if type(data) is not dict:
                raise MalformedMessage("combined stream data is not an object")
            payload = data
        event = payload.get("e")
        if event == "24hrTicker":
            return self._ticker(payload, received_at)
        if event == "serverShutdown":
            return _RECONNECT_SHUTDOWN
        inner = msg.get("event")
        if type(inner) is dict and inner.get("e") == "serverShutdown":
            return _RECONNECT_SHUTDOWN
        if "id" in msg and "result" in msg:
            return _ACK if msg["result"] is None else Control(ControlKind.RESPONSE)
        if "code" in msg and "msg" in msg:
            return Control(ControlKind.ERROR, f"code {msg['code']}: {msg['msg']}")
        raise UnexpectedMessage(f"unexpected event {event!r}" if event else "unexpected message")

    def _ticker(self, p: dict[str, Any], received_at: datetime) -> Ticker:
        key = self._by_exchange_symbol.get(p.get("s"))  # type: ignore[arg-type]
        if key is None:
            raise UnexpectedMessage(f"ticker for unsubscribed symbol {p.get('s')!r}")
        event_ms = p.get("E")
        if type(event_ms) is not int or not 0 < event_ms <= MAX_EVENT_MS:
            raise MalformedMessage("ticker without a valid event time E")
        try:
            raw = tuple(p[name] for name in TICKER_FIELDS)
        except KeyError as exc:
            raise MalformedMessage(f"ticker without field {exc.args[0]!r}") from None
        return build_ticker(key, raw, event_ms, received_at)
