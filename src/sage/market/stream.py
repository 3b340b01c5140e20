"""Live ticker fan-out inside one API process.

One Valkey subscription per process, however many clients: the hub subscribes when the
first client arrives, unsubscribes when the last leaves, and copies each published
ticker to the clients that asked for its symbol. Every client has a bounded queue; a
client that falls that far behind is dropped (its stream ends) instead of making the
process buffer without limit. Several API processes behind the load balancer each run
their own hub on the same Valkey channel, so every client sees every update.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import orjson

from sage.observability.metrics import Metrics
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)


class SlowConsumer(Exception):
    """The client fell `queue_size` updates behind and was dropped."""


class StreamClient:
    """One subscriber's bounded backlog.

    The bound is checked once per published message: a client whose backlog already holds
    `limit` updates is dropped; otherwise the whole message is queued. So a client that
    keeps up never loses a burst (one message carries at most PUBLISH_CHUNK updates), and
    no backlog ever exceeds limit + PUBLISH_CHUNK updates."""

    def __init__(self, symbols: frozenset[str] | None, limit: int) -> None:
        self.symbols = symbols
        self.limit = limit
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.dropped = False
        self.delivered = 0
        self.high_water = 0
        self._gone = asyncio.Event()

    def offer(self, payloads: list[bytes]) -> bool:
        """Queue one message's updates; False (and the client dropped) when it was too far behind."""
        if self.dropped:
            return False
        if self.queue.qsize() >= self.limit:
            self.dropped = True
            # Free the backlog now; the reader sees `dropped` and ends the stream.
            while not self.queue.empty():
                self.queue.get_nowait()
            self._gone.set()
            return False
        for payload in payloads:
            self.queue.put_nowait(payload)
        self.delivered += len(payloads)
        self.high_water = max(self.high_water, self.queue.qsize())
        return True

    async def next(self, timeout: float) -> bytes | None:
        """The next update as wire JSON, or None after `timeout` seconds without one.
        Raises SlowConsumer once the hub has dropped this client."""
        if self.dropped:
            raise SlowConsumer
        if not self.queue.empty():
            return self.queue.get_nowait()
        getter = asyncio.ensure_future(self.queue.get())
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            done, _ = await asyncio.wait({getter, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (getter, gone):
                if not task.done():
                    task.cancel()
        if getter in done and not getter.cancelled():
            return getter.result()
        if self.dropped:
            raise SlowConsumer
        return None


class TickerStreamHub:
    def __init__(self, cache: Cache, channel: str, metrics: Metrics, *, queue_size: int = 256) -> None:
        self.cache = cache
        self.channel = channel
        self.metrics = metrics
        self.queue_size = queue_size
        self.clients: set[StreamClient] = set()
        self.dropped_clients = 0
        self.subscribed = asyncio.Event()  # set while the Valkey subscription is open
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @asynccontextmanager
    async def subscribe(self, symbols: frozenset[str] | None = None) -> AsyncIterator[StreamClient]:
        client = StreamClient(symbols, self.queue_size)
        self.clients.add(client)
        self.metrics.gauge("SSEClients", len(self.clients))
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._listen(self._stopping), name="market-stream-hub")
        try:
            yield client
        finally:
            self.clients.discard(client)
            self.metrics.gauge("SSEClients", len(self.clients))
            if not self.clients:
                await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        self._stopping.set()
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self.subscribed.clear()

    async def close(self) -> None:
        await self._stop()

    async def _listen(self, stopping: asyncio.Event) -> None:
        # `stopping`, besides the task's cancellation: a client library that turns a
        # cancellation into a connection error would otherwise keep this loop (and the
        # stream that waits for it to end) going
        retry = 0.5
        while not stopping.is_set():
            try:
                async with self.cache.backend.subscribe(self.channel) as subscription:
                    self.subscribed.set()
                    retry = 0.5
                    async for _channel, payload in subscription:
                        self.dispatch(payload)
            except CacheUnavailable as exc:
                self.cache.report_failure("market stream subscribe", exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("market stream hub failed; resubscribing")
            self.subscribed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), retry * (0.5 + random.random() / 2))
            retry = min(10.0, retry * 2)

    def dispatch(self, payload: bytes) -> None:
        try:
            tickers = orjson.loads(payload)["tickers"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            tickers = None
        if type(tickers) is not list or not all(type(wire) is dict for wire in tickers):
            log.warning("unreadable message on the market channel")
            return
        if not self.clients:
            return
        encoded = [orjson.dumps(wire) for wire in tickers]
        for client in list(self.clients):
            if client.dropped:
                continue
            if client.symbols is None:
                selected = encoded
            else:
                selected = [
                    data for wire, data in zip(tickers, encoded, strict=True) if wire.get("symbol") in client.symbols
                ]
            if selected and not client.offer(selected):
                self.dropped_clients += 1
                self.metrics.incr("SSESlowClientsDropped")
                log.warning("dropped a slow market stream client", extra={"queue_size": self.queue_size})
