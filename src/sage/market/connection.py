"""The shared WebSocket connection runner. It knows nothing about exchanges.

It connects, sends the open messages at a bounded rate, hands every inbound frame to
a callback, keeps the connection alive and replaces it when it dies:

- Reconnects forever with capped exponential backoff and jitter. The backoff starts
  over only after a connection stayed up and delivered frames for `reset_after`
  seconds: resetting on every successful handshake (or never, cryptofeed#349) turns a
  server that accepts and then drops us into a reconnect storm, or a brief outage
  into hour-long waits.
- A watchdog replaces a connection that delivered no frame for `watchdog` seconds.
  Every inbound frame counts (acks, pongs, tickers, even malformed ones), and quiet
  connections get an application heartbeat that the server answers, so a quiet market
  is not mistaken for a dead socket (cryptofeed#536).
- Protocol pings from the server are answered by the websockets library; our own
  protocol pings (`ping_interval`) detect half-open TCP connections.
- The frame callback runs synchronously in the receive loop and must be quick; it may
  return a reason string to ask for a fresh connection (e.g. a shutdown notice).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sage.observability.metrics import Metrics

log = logging.getLogger(__name__)

FrameHandler = Callable[[str | bytes, float], str | None]


@dataclass(frozen=True)
class Heartbeat:
    message: Callable[[], str]
    interval: float
    only_when_quiet: bool = False


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    url: str
    on_open: Callable[[], Sequence[str]] = tuple
    send_rate: float = 4.0  # outbound application messages per second, at most
    heartbeat: Heartbeat | None = None
    max_lifetime: float | None = None
    labels: dict[str, str] = field(default_factory=dict)  # metric dimensions


class Backoff:
    """Capped exponential backoff with jitter: attempt n waits a random time in
    [base * (1 - jitter), base] where base = min(maximum, initial * multiplier**n)."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        multiplier: float = 2.0,
        jitter: float = 0.5,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.multiplier = multiplier
        self.jitter = min(max(jitter, 0.0), 1.0)
        self.rng = rng
        self.attempt = 0

    def next(self) -> tuple[float, float]:
        """(base, actual) delay for the next attempt."""
        base = min(self.maximum, self.initial * self.multiplier ** min(self.attempt, 64))
        self.attempt += 1
        return base, base * (1.0 - self.jitter * self.rng())

    def reset(self) -> None:
        self.attempt = 0


class SendPacer:
    """Spaces outbound messages so at most `rate` leave per second (Binance allows 5
    inbound messages per second per connection, pings and pongs included)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next_at = -float("inf")

    async def wait(self) -> None:
        # The slot is reserved before sleeping, so concurrent senders (the opening
        # subscriptions, heartbeats, runtime SUBSCRIBE/UNSUBSCRIBE) queue up instead of
        # all waking at the same instant.
        now = self.clock()
        at = max(now, self._next_at)
        self._next_at = at + self.interval
        if at > now:
            await self.sleep(at - now)  # type: ignore[misc]


@dataclass
class ConnectionStats:
    connects: int = 0
    disconnects: int = 0
    frames: int = 0
    handler_errors: int = 0
    backoff_resets: int = 0
    connected: bool = False
    last_reason: str = ""
    delays: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=64))  # (base, actual)
    reasons: deque[str] = field(default_factory=lambda: deque(maxlen=64))


class ConnectionRunner:
    def __init__(
        self,
        spec: ConnectionSpec,
        on_frame: FrameHandler,
        *,
        metrics: Metrics,
        backoff: Backoff,
        watchdog: float = 30.0,
        reset_after: float = 60.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_size: int = 1 << 20,
    ) -> None:
        self.spec = spec
        self.on_frame = on_frame
        self.metrics = metrics
        self.backoff = backoff
        self.watchdog = watchdog
        self.reset_after = reset_after
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.max_size = max_size
        self.stats = ConnectionStats()
        self._last_frame_at = 0.0
        self._ws: ClientConnection | None = None
        self._pacer: SendPacer | None = None

    async def send(self, message: str) -> bool:
        """Send on the current connection through its pacer (runtime SUBSCRIBE and the
        like); False when there is none (the next connection's `on_open` covers it)."""
        ws, pacer = self._ws, self._pacer
        if ws is None or pacer is None:
            return False
        try:
            await pacer.wait()
            await ws.send(message)
        except ConnectionClosed:
            return False
        return True

    async def run(self) -> None:
        """Connect and reconnect until cancelled."""
        first = True
        while True:
            if not first:
                base, delay = self.backoff.next()
                self.stats.delays.append((base, delay))
                self.metrics.incr("FeedReconnects", **cast(dict[str, Any], self.spec.labels))
                log.warning(
                    "feed connection lost; reconnecting",
                    extra={"feed": self.spec.name, "reason": self.stats.last_reason, "delay_s": round(delay, 3)},
                )
                await asyncio.sleep(delay)
            first = False
            try:
                reason = await self._connect_once()
            except Exception as exc:  # refused, timed out, HTTP 429/418 on the handshake, reset...
                reason = f"{type(exc).__name__}: {exc}"[:300]
            self.stats.connected = False
            self.stats.disconnects += 1
            self.stats.last_reason = reason
            self.stats.reasons.append(reason)

    async def _connect_once(self) -> str:
        async with connect(
            self.spec.url,
            open_timeout=self.open_timeout,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            max_size=self.max_size,
            user_agent_header="sage-market-ingestor",
        ) as ws:
            self.stats.connects += 1
            self.stats.connected = True
            self._last_frame_at = time.monotonic()
            first_frame = asyncio.Event()
            pacer = SendPacer(self.spec.send_rate)
            self._ws, self._pacer = ws, pacer
            tasks: set[asyncio.Task[str]] = {
                asyncio.create_task(self._receive(ws, first_frame), name=f"{self.spec.name}:receive"),
                asyncio.create_task(self._watch(ws), name=f"{self.spec.name}:watchdog"),
            }
            helpers = [
                asyncio.create_task(self._open(ws, pacer)),
                asyncio.create_task(self._healthy(first_frame)),
            ]
            if self.spec.heartbeat is not None:
                helpers.append(asyncio.create_task(self._heartbeat(ws, pacer, self.spec.heartbeat)))
            if self.spec.max_lifetime:
                tasks.add(asyncio.create_task(self._lifetime(self.spec.max_lifetime)))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                finished = done.pop()
                exc = finished.exception()
                reason = f"{type(exc).__name__}: {exc}"[:300] if exc else finished.result()
            finally:
                self._ws = self._pacer = None
                for task in (*tasks, *helpers):
                    task.cancel()
                await asyncio.gather(*tasks, *helpers, return_exceptions=True)
            if reason.startswith("watchdog"):
                # A dead peer will not answer a close handshake; don't wait for one.
                ws.transport.abort()
            return reason

    async def _receive(self, ws: ClientConnection, first_frame: asyncio.Event) -> str:
        stats = self.stats
        on_frame = self.on_frame
        monotonic = time.monotonic
        wall = time.time
        async for frame in ws:
            self._last_frame_at = monotonic()
            stats.frames += 1
            if not first_frame.is_set():
                first_frame.set()
            try:
                reason = on_frame(frame, wall())
            except Exception:
                stats.handler_errors += 1
                log.exception("feed frame handler failed", extra={"feed": self.spec.name})
                continue
            if reason:
                return f"server notice: {reason}"
        return f"closed by server (code {ws.close_code}, reason {ws.close_reason!r})"

    async def _watch(self, ws: ClientConnection) -> str:
        interval = min(1.0, self.watchdog / 4)
        while True:
            await asyncio.sleep(interval)
            quiet = time.monotonic() - self._last_frame_at
            if quiet > self.watchdog:
                return f"watchdog: no message for {quiet:.1f}s"

    async def _lifetime(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "connection reached its maximum lifetime"

    async def _open(self, ws: ClientConnection, pacer: SendPacer) -> None:
        try:
            for message in self.spec.on_open():
                await pacer.wait()
                await ws.send(message)
        except ConnectionClosed:
            return

    async def _heartbeat(self, ws: ClientConnection, pacer: SendPacer, beat: Heartbeat) -> None:
        sent_at = time.monotonic()
        try:
            while True:
                await asyncio.sleep(beat.interval / 4 if beat.only_when_quiet else beat.interval)
                now = time.monotonic()
                if beat.only_when_quiet and (
                    now - self._last_frame_at < beat.interval or now - sent_at < beat.interval
                ):
                    continue
                await pacer.wait()
                await ws.send(beat.message())
                sent_at = time.monotonic()
        except ConnectionClosed:
            return

    async def _healthy(self, first_frame: asyncio.Event) -> None:
        await first_frame.wait()
        await asyncio.sleep(self.reset_after)
        if self.backoff.attempt:
            self.stats.backoff_resets += 1
        self.backoff.reset()
