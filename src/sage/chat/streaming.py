"""The resumable buffer of an in-flight answer.

`AnswerChannel` holds one answer's events in order for readers in this process (the
POST that asked, and any reconnect that lands here) and mirrors them to an `EventLog` in
Valkey, so a reconnect that lands on another API task can replay what it missed and
follow the rest. Mirroring runs in a background writer that batches events (it waits a few milliseconds
after an event for the ones that follow; the opening event goes out at once, with the
buffer's meta): the client's own stream never waits on Valkey.

Valkey layout per answer (all keys expire; nothing needs cleaning up):
  chat:ev:<message_id>:meta        who may read it (chat, user) and when it started
  chat:ev:<message_id>:head        highest seq written
  chat:ev:<message_id>:<seq>       one event
  chat:ev:<message_id>:alive       refreshed by the producer while it runs
  chat:ev:<message_id>:reader:<n>  leases of readers on other tasks (they keep the answer alive)
  channel chat:live:<message_id>   batches of events as they are written

A reader on another task takes its lease before its response starts (`take_reader_lease`):
a client that sees the new stream open may close the old one at once, and the producer,
finding no reader, would cancel the answer. When Valkey cannot be read, readers raise
`BufferUnavailable` (the service then waits for the stored answer instead), and the
producer counts an unknown reader as a reader: the answer completes and is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from sage.chat.sse import StreamEvent
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

READER_SLOTS = 8
LEASE_ATTEMPTS = 3
WRITE_BATCH = 64
# The writer waits this long after an event before mirroring it, so the events that follow
# go in the same batch (two Valkey round trips per batch, not per event) and its Valkey
# work never competes with the client's first bytes. A reader on another task follows
# that much later; the local readers are not delayed at all.
WRITE_COALESCE_SECONDS = 0.005


class BufferUnavailable(Exception):
    """Valkey could not be read; the reader had got as far as (seq, chars)."""

    def __init__(self, seq: int, chars: int) -> None:
        super().__init__(f"answer buffer unavailable after event {seq}")
        self.seq = seq
        self.chars = chars


@dataclass(frozen=True)
class ReaderLease:
    key: str
    owner: str


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
    async def append(
        self, message_id: uuid.UUID, events: list[StreamEvent], *, meta: dict[str, Any] | None = None
    ) -> None:
        """Write `events` (and, for the buffer's first write, `meta`: who may read it) in one
        SET round trip, then publish them to readers on other tasks."""
        if not events and meta is None:
            return
        items = {self._key(message_id, e.seq): e.dump() for e in events}
        if events:
            items[self._key(message_id, "head")] = str(events[-1].seq).encode()
        items[self._key(message_id, "alive")] = b"1"
        if meta is not None:
            items[self._key(message_id, "meta")] = orjson.dumps(meta)
        async with self.slots:
            await self._guard("chat_buffer_write", self.cache.backend.set_many(items, self.ttl))
            if events:
                payload = orjson.dumps([e.dump().decode() for e in events])
                await self._guard("chat_buffer_publish", self.cache.backend.publish(self.channel(message_id), payload))

    async def heartbeat(self, message_id: uuid.UUID) -> None:
        async with self.slots:
            await self._guard(
                "chat_buffer_alive", self.cache.backend.set(self._key(message_id, "alive"), b"1", self.keepalive * 3)
            )

    async def finish(self, message_id: uuid.UUID) -> None:
        async with self.slots:
            await self._guard("chat_buffer_finish", self.cache.backend.delete(self._key(message_id, "alive")))

    async def write_loop(
        self, message_id: uuid.UUID, queue: asyncio.Queue[StreamEvent | None], meta: dict[str, Any]
    ) -> None:
        """Mirror a channel's events until it closes; batches what has piled up meanwhile.

        The buffer is opened (`meta`) with the answer's first event, at once: that is the
        moment the upstream request is being sent, long before the model's first token, so
        no Valkey round trip is due when that token arrives (with a wait after the opening
        event too, the write landed right on the first token)."""
        done = False
        opening: dict[str, Any] | None = meta
        while not done:
            try:
                async with asyncio.timeout(self.keepalive):
                    first = await queue.get()
            except TimeoutError:
                await self.heartbeat(message_id)
                continue
            if first is not None and not first.terminal and opening is None:
                await asyncio.sleep(WRITE_COALESCE_SECONDS)
            batch: list[StreamEvent] = []
            for item in (first, *_drain(queue, WRITE_BATCH)):
                if item is None:
                    done = True
                else:
                    batch.append(item)
            await self.append(message_id, batch, meta=opening)
            opening = None
        await self.finish(message_id)

    async def any_reader(self, message_id: uuid.UUID) -> bool | None:
        """Whether a reader on another task holds the answer; None when Valkey cannot tell."""
        keys = [self._key(message_id, "reader", n) for n in range(READER_SLOTS)]
        try:
            async with self.slots:
                values = await self.cache.backend.get_many(keys)
        except CacheUnavailable as exc:
            self.cache.report_failure("chat_buffer_readers", exc)
            return None
        return any(v is not None for v in values)

    # -- readers on any task ------------------------------------------------------------------
    async def meta(self, message_id: uuid.UUID) -> dict[str, Any] | None:
        """Who may read the answer, None when there is no buffer; BufferUnavailable when Valkey is down."""
        try:
            raw = await self.cache.backend.get(self._key(message_id, "meta"))
        except CacheUnavailable as exc:
            self.cache.report_failure("chat_buffer_meta", exc)
            raise BufferUnavailable(0, 0) from None
        return None if raw is None else dict(orjson.loads(raw))

    async def _alive(self, message_id: uuid.UUID) -> bool:
        return await self.cache.backend.get(self._key(message_id, "alive")) is not None

    async def _head(self, message_id: uuid.UUID) -> int:
        raw = await self.cache.backend.get(self._key(message_id, "head"))
        return int(raw) if raw else 0

    async def _range(self, message_id: uuid.UUID, after: int, upto: int) -> list[StreamEvent]:
        if upto <= after:
            return []
        keys = [self._key(message_id, seq) for seq in range(after + 1, upto + 1)]
        values = await self.cache.backend.get_many(keys)
        return [StreamEvent.load(v) for v in values if v is not None]

    async def take_reader_lease(self, message_id: uuid.UUID) -> ReaderLease | None:
        """A reader's lease, which keeps the answer alive while it reads (None: all taken, or Valkey down).
        A failed call is tried again at once: a reader without a lease lets the answer be cancelled."""
        owner = uuid.uuid4().hex
        for n in range(READER_SLOTS):
            key = self._key(message_id, "reader", n)
            for attempt in range(LEASE_ATTEMPTS):
                try:
                    taken = await self.cache.backend.acquire_lease(key, owner, self.keepalive * 3)
                    break
                except CacheUnavailable as exc:
                    self.cache.report_failure("chat_buffer_reader", exc)
                    if attempt == LEASE_ATTEMPTS - 1:
                        return None
                    await asyncio.sleep(0.05 * (attempt + 1))
            if taken:
                return ReaderLease(key, owner)
        return None

    async def follow(
        self,
        message_id: uuid.UUID,
        after_seq: int,
        after_chars: int,
        *,
        lease: ReaderLease | None,
        on_gone: Callable[[int, int], StreamEvent],
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """Replay after `after_seq`, then follow live batches until the terminal event.

        Subscribes before reading the head, so nothing written in between is missed;
        duplicates are skipped by seq and gaps are filled from the keys. When the
        producer stops refreshing `alive` without a terminal event (its task died),
        `on_gone(seq, chars)` supplies the closing event. Renews and finally releases
        `lease`. Raises BufferUnavailable when Valkey cannot be read.
        """
        delivered, chars = after_seq, after_chars
        inbox: asyncio.Queue[list[StreamEvent] | None] = asyncio.Queue()
        try:
            subscription_cm = self.cache.backend.subscribe(self.channel(message_id))
            subscription = await subscription_cm.__aenter__()
        except CacheUnavailable as exc:
            self.cache.report_failure("chat_buffer_subscribe", exc)
            await self._release(lease)
            raise BufferUnavailable(delivered, chars) from None

        async def pump() -> None:
            try:
                async for _, payload in subscription:
                    inbox.put_nowait([StreamEvent.load(raw) for raw in orjson.loads(payload)])
            except CacheUnavailable as exc:
                self.cache.report_failure("chat_buffer_follow", exc)
                inbox.put_nowait(None)

        pumping = asyncio.create_task(pump())
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        try:
            for item in await self._range(message_id, delivered, await self._head(message_id)):
                if item.seq == delivered + 1:
                    delivered, chars = item.seq, item.chars
                    yield item
                    if item.terminal:
                        return
            while True:
                if loop.time() - renewed >= self.keepalive:
                    # renewed on a clock, not only when idle: a busy stream must not lose its lease
                    renewed = loop.time()
                    if lease is None:
                        lease = await self.take_reader_lease(message_id)
                    else:
                        await self._guard(
                            "chat_buffer_reader",
                            self.cache.backend.acquire_lease(lease.key, lease.owner, self.keepalive * 3),
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
                if batch is None:
                    raise BufferUnavailable(delivered, chars)
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
        except CacheUnavailable as exc:
            self.cache.report_failure("chat_buffer_read", exc)
            raise BufferUnavailable(delivered, chars) from None
        finally:
            pumping.cancel()
            with contextlib.suppress(BaseException):
                await pumping
            await self._release(lease)
            with contextlib.suppress(Exception):
                await subscription_cm.__aexit__(None, None, None)

    async def _release(self, lease: ReaderLease | None) -> None:
        if lease is not None:
            await self._guard("chat_buffer_reader", self.cache.backend.release_lease(lease.key, lease.owner))


def _drain(queue: asyncio.Queue[StreamEvent | None], limit: int) -> list[StreamEvent | None]:
    items: list[StreamEvent | None] = []
    while len(items) < limit:
        try:
            items.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return items
