"""The resumable buffer of an in-flight answer.

`AnswerChannel` holds one answer's events in order for readers in this process (the
POST that asked, and any reconnect that lands here) and mirrors them to an `EventLog` in
Valkey, so a reconnect that lands on another API task can replay what it missed and
follow the rest. Mirroring runs in a background writer that batches events: the client's
own stream never waits on Valkey.

Valkey layout per answer (all keys expire; nothing needs cleaning up):
  chat:ev:<message_id>:meta        who may read it (chat, user) and when it started
  chat:ev:<message_id>:head        highest seq written
  chat:ev:<message_id>:<seq>       one event
  chat:ev:<message_id>:alive       refreshed by the producer while it runs
  chat:ev:<message_id>:reader:<n>  leases of readers on other tasks (they keep the answer alive)
  channel chat:live:<message_id>   batches of events as they are written
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from sage.chat.sse import StreamEvent
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

READER_SLOTS = 8
WRITE_BATCH = 64


class AnswerChannel:
    """One answer's events for local readers; `wait()` blocks until there is more."""

    def __init__(self, message_id: uuid.UUID) -> None:
        self.message_id = message_id
        self.events: list[StreamEvent] = []
        self.closed = False
        self.consumers = 0
        self.chars = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._mirror: asyncio.Queue[StreamEvent | None] | None = None

    def mirror_to(self, queue: asyncio.Queue[StreamEvent | None]) -> None:
        self._mirror = queue

    def publish(self, event: str, data: dict[str, Any], *, text: str = "") -> StreamEvent:
        self.chars += len(text)
        item = StreamEvent(seq=len(self.events) + 1, event=event, data=data, chars=self.chars)
        self.events.append(item)
        self._wake()  # readers first: the client's next bytes never queue behind the Valkey write
        if self._mirror is not None:
            self._mirror.put_nowait(item)
        return item

    def close(self) -> None:
        self.closed = True
        if self._mirror is not None:
            self._mirror.put_nowait(None)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, index: int, timeout: float) -> bool:
        """True when an event at `index` exists (or the channel closed) within `timeout`."""
        if index < len(self.events) or self.closed:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def follow(self, after_seq: int, keepalive: float) -> AsyncGenerator[StreamEvent | None, None]:
        """Events after `after_seq`, then live ones until the terminal event; None = idle tick."""
        index = max(0, after_seq)
        while True:
            if index < len(self.events):
                item = self.events[index]
                index += 1
                yield item
                if item.terminal:
                    return
                continue
            if self.closed:
                return
            if not await self.wait(index, keepalive):
                yield None


class EventLog:
    """The Valkey side of the buffer (the in-process backend in the embedded default)."""

    def __init__(self, cache: Cache, *, ttl: float, keepalive: float, slots: asyncio.Semaphore | None = None) -> None:
        self.cache = cache
        self.ttl = ttl
        self.keepalive = keepalive
        # A thousand answers each writing at once would exhaust the Valkey connection pool
        # (valkey-py fails fast past max_connections); with a bound, writers that wait
        # simply send bigger batches next time.
        self.slots = slots or asyncio.Semaphore(16)

    def _key(self, message_id: uuid.UUID, *parts: object) -> str:
        return self.cache.key("chat", "ev", message_id, *parts)

    def channel(self, message_id: uuid.UUID) -> str:
        return self.cache.key("chat", "live", message_id)

    async def _guard(self, operation: str, coro: Any) -> Any:
        try:
            return await coro
        except CacheUnavailable as exc:
            self.cache.report_failure(operation, exc)
            return None

    # -- producer -------------------------------------------------------------------------------
    async def open(self, message_id: uuid.UUID, meta: dict[str, Any]) -> None:
        items = {self._key(message_id, "meta"): orjson.dumps(meta), self._key(message_id, "alive"): b"1"}
        async with self.slots:
            await self._guard("chat_buffer_open", self.cache.backend.set_many(items, self.ttl))

    async def append(self, message_id: uuid.UUID, events: list[StreamEvent]) -> None:
        if not events:
            return
        items = {self._key(message_id, e.seq): e.dump() for e in events}
        items[self._key(message_id, "head")] = str(events[-1].seq).encode()
        items[self._key(message_id, "alive")] = b"1"
        payload = orjson.dumps([e.dump().decode() for e in events])
        async with self.slots:
            await self._guard("chat_buffer_write", self.cache.backend.set_many(items, self.ttl))
            await self._guard("chat_buffer_publish", self.cache.backend.publish(self.channel(message_id), payload))

    async def heartbeat(self, message_id: uuid.UUID) -> None:
        async with self.slots:
            await self._guard(
                "chat_buffer_alive", self.cache.backend.set(self._key(message_id, "alive"), b"1", self.keepalive * 3)
            )

    async def finish(self, message_id: uuid.UUID) -> None:
        async with self.slots:
            await self._guard("chat_buffer_finish", self.cache.backend.delete(self._key(message_id, "alive")))

    async def write_loop(self, message_id: uuid.UUID, queue: asyncio.Queue[StreamEvent | None]) -> None:
        """Mirror a channel's events until it closes; batches what has piled up meanwhile."""
        done = False
        while not done:
            try:
                async with asyncio.timeout(self.keepalive):
                    first = await queue.get()
            except TimeoutError:
                await self.heartbeat(message_id)
                continue
            batch: list[StreamEvent] = []
            for item in (first, *_drain(queue, WRITE_BATCH)):
                if item is None:
                    done = True
                else:
                    batch.append(item)
            await self.append(message_id, batch)
        await self.finish(message_id)

    async def any_reader(self, message_id: uuid.UUID) -> bool:
        keys = [self._key(message_id, "reader", n) for n in range(READER_SLOTS)]
        async with self.slots:
            values = await self._guard("chat_buffer_readers", self.cache.backend.get_many(keys))
        return bool(values) and any(v is not None for v in values)

    # -- readers on any task ------------------------------------------------------------------
    async def meta(self, message_id: uuid.UUID) -> dict[str, Any] | None:
        raw = await self._guard("chat_buffer_meta", self.cache.backend.get(self._key(message_id, "meta")))
        return None if raw is None else dict(orjson.loads(raw))

    async def _alive(self, message_id: uuid.UUID) -> bool:
        raw = await self._guard("chat_buffer_alive", self.cache.backend.get(self._key(message_id, "alive")))
        return raw is not None

    async def _head(self, message_id: uuid.UUID) -> int:
        raw = await self._guard("chat_buffer_head", self.cache.backend.get(self._key(message_id, "head")))
        return int(raw) if raw else 0

    async def _range(self, message_id: uuid.UUID, after: int, upto: int) -> list[StreamEvent]:
        if upto <= after:
            return []
        keys = [self._key(message_id, seq) for seq in range(after + 1, upto + 1)]
        values = await self._guard("chat_buffer_read", self.cache.backend.get_many(keys)) or []
        return [StreamEvent.load(v) for v in values if v is not None]

    async def _take_slot(self, message_id: uuid.UUID, owner: str) -> str | None:
        for n in range(READER_SLOTS):
            key = self._key(message_id, "reader", n)
            if await self._guard(
                "chat_buffer_reader", self.cache.backend.acquire_lease(key, owner, self.keepalive * 3)
            ):
                return key
        return None

    async def follow(
        self, message_id: uuid.UUID, after_seq: int, *, on_gone: Callable[[int, int], StreamEvent]
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """Replay after `after_seq`, then follow live batches until the terminal event.

        Subscribes before reading the head, so nothing written in between is missed;
        duplicates are skipped by seq and gaps are filled from the keys. When the
        producer stops refreshing `alive` without a terminal event (its task died),
        `on_gone(seq, chars)` supplies the closing event.
        """
        owner = uuid.uuid4().hex
        inbox: asyncio.Queue[list[StreamEvent]] = asyncio.Queue()
        try:
            subscription_cm = self.cache.backend.subscribe(self.channel(message_id))
            subscription = await subscription_cm.__aenter__()
        except CacheUnavailable as exc:
            self.cache.report_failure("chat_buffer_subscribe", exc)
            yield on_gone(after_seq, 0)
            return

        async def pump() -> None:
            try:
                async for _, payload in subscription:
                    inbox.put_nowait([StreamEvent.load(raw) for raw in orjson.loads(payload)])
            except CacheUnavailable as exc:
                self.cache.report_failure("chat_buffer_follow", exc)

        pumping = asyncio.create_task(pump())
        slot = await self._take_slot(message_id, owner)
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        delivered = after_seq
        chars = 0
        try:
            for item in await self._range(message_id, delivered, await self._head(message_id)):
                if item.seq == delivered + 1:
                    delivered, chars = item.seq, item.chars
                    yield item
                    if item.terminal:
                        return
            while True:
                if slot is not None and loop.time() - renewed >= self.keepalive:
                    # renewed on a clock, not only when idle: a busy stream must not lose its lease
                    renewed = loop.time()
                    await self._guard(
                        "chat_buffer_reader", self.cache.backend.acquire_lease(slot, owner, self.keepalive * 3)
                    )
                try:
                    async with asyncio.timeout(self.keepalive):
                        batch = await inbox.get()
                except TimeoutError:
                    yield None
                    missed = await self._range(message_id, delivered, await self._head(message_id))
                    if not missed and not await self._alive(message_id):
                        yield on_gone(delivered, chars)
                        return
                    batch = missed
                for item in batch:
                    if item.seq <= delivered:
                        continue
                    if item.seq > delivered + 1:
                        for gap in await self._range(message_id, delivered, item.seq - 1):
                            if gap.seq == delivered + 1:
                                delivered, chars = gap.seq, gap.chars
                                yield gap
                    if item.seq != delivered + 1:
                        continue
                    delivered, chars = item.seq, item.chars
                    yield item
                    if item.terminal:
                        return
        finally:
            pumping.cancel()
            with contextlib.suppress(BaseException):
                await pumping
            if slot is not None:
                await self._guard("chat_buffer_reader", self.cache.backend.release_lease(slot, owner))
            with contextlib.suppress(Exception):
                await subscription_cm.__aexit__(None, None, None)


def _drain(queue: asyncio.Queue[StreamEvent | None], limit: int) -> list[StreamEvent | None]:
    items: list[StreamEvent | None] = []
    while len(items) < limit:
        try:
            items.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return items
