"""In-process cache backend for the embedded default (one process, no Valkey).

Same contract as ValkeyBackend: TTLs, fixed windows, token buckets, leases and
pub/sub. Subscribers get bounded queues; a subscriber that falls behind loses the
oldest messages (counted in `dropped`) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sage.store.cache import WindowHit

SUBSCRIBER_QUEUE_SIZE = 10_000


class _MemorySubscription:
    def __init__(self, backend: MemoryBackend, channels: tuple[str, ...]) -> None:
        self._backend = backend
        self.channels = channels
        self.queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
        self.dropped = 0

    def deliver(self, channel: str, message: bytes) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait((channel, message))

    async def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item

    async def close(self) -> None:
        self._backend._subscribers.discard(self)
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class MemoryBackend:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._subscribers: set[_MemorySubscription] = set()

    # -- key/value ----------------------------------------------------------------------------
    def _live(self, key: str) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        return value

    def purge_expired(self) -> int:
        """Drop every expired key now (reads drop them lazily); returns how many went."""
        now = self._clock()
        expired = [k for k, (_, expires) in self._data.items() if expires is not None and expires <= now]
        for key in expired:
            del self._data[key]
        return len(expired)

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        return value if isinstance(value, bytes) else None

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [await self.get(k) for k in keys]

    async def set(self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False) -> bool:
        if nx and self._live(key) is not None:
            return False
        self._data[key] = (value, self._expiry(ttl))
        return True

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        expires = self._expiry(ttl)
        for key, value in items.items():
            self._data[key] = (value, expires)

    async def delete(self, *keys: str) -> int:
        removed = 0
        for key in keys:
            if self._live(key) is not None:
                del self._data[key]
                removed += 1
        return removed

    async def ttl(self, key: str) -> float | None:
        if self._live(key) is None:
            return None
        expires = self._data[key][1]
        return None if expires is None else max(0.0, expires - self._clock())

    async def keys(self, pattern: str) -> list[str]:
        return [k for k in list(self._data) if self._live(k) is not None and fnmatch.fnmatchcase(k, pattern)]

    # -- counters, buckets, leases ----------------------------------------------------------
    async def hit_window(self, key: str, window_seconds: float) -> WindowHit:
        current = self._live(key)
        if current is None:
            self._data[key] = (1, self._expiry(window_seconds))
            return WindowHit(1, window_seconds)
        count = int(current) + 1
        expires = self._data[key][1]
        self._data[key] = (count, expires)
        return WindowHit(count, max(0.0, (expires or self._clock()) - self._clock()))

    async def take_token(self, key: str, capacity: float, refill_per_second: float, cost: float = 1) -> float:
        now = self._clock()
        state = self._live(key)
        tokens, stamp = (capacity, now) if state is None else state
        tokens = min(capacity, tokens + (now - stamp) * refill_per_second)
        ttl = capacity / refill_per_second + 1
        if tokens >= cost:
            self._data[key] = ((tokens - cost, now), self._expiry(ttl))
            return 0.0
        self._data[key] = ((tokens, now), self._expiry(ttl))
        return float((cost - tokens) / refill_per_second)

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        holder = self._live(key)
        if holder is None or holder == owner.encode():
            self._data[key] = (owner.encode(), self._expiry(ttl))
            return True
        return False

    async def release_lease(self, key: str, owner: str) -> bool:
        if self._live(key) == owner.encode():
            del self._data[key]
            return True
        return False

    # -- sorted sets -------------------------------------------------------------------------
    async def zadd(self, key: str, members: Mapping[str, float], ttl: float | None = None) -> int:
        current = self._live(key)
        scores: dict[str, float] = dict(current) if isinstance(current, dict) else {}
        new = sum(1 for m in members if m not in scores)
        scores.update(members)
        expires = self._expiry(ttl) if ttl is not None else (self._data[key][1] if current is not None else None)
        self._data[key] = (scores, expires)
        return new

    async def zrange_desc(self, key: str, min_score: float, limit: int) -> list[tuple[str, float]]:
        current = self._live(key)
        if not isinstance(current, dict):
            return []
        ranked = sorted(((m, s) for m, s in current.items() if s >= min_score), key=lambda item: -item[1])
        return ranked[:limit]

    async def zrem_below(self, key: str, max_score: float) -> int:
        current = self._live(key)
        if not isinstance(current, dict):
            return 0
        gone = [m for m, s in current.items() if s < max_score]
        for m in gone:
            del current[m]
        return len(gone)

    # -- pub/sub -----------------------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> int:
        receivers = 0
        for sub in list(self._subscribers):
            if any(fnmatch.fnmatchcase(channel, pattern) for pattern in sub.channels):
                sub.deliver(channel, message)
                receivers += 1
        return receivers

    async def set_many_and_publish(
        self, items: Mapping[str, bytes], ttl: float | None, channel: str, messages: Sequence[bytes]
    ) -> list[BaseException | None]:
        await self.set_many(items, ttl)  # nothing here can fail but the process
        for message in messages:
            await self.publish(channel, message)
        return [None] * (1 + len(messages))

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[_MemorySubscription]:
        sub = _MemorySubscription(self, channels)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            await sub.close()

    # -- admin --------------------------------------------------------------------------------------
    async def ping(self) -> None:
        return None

    async def info_memory(self) -> tuple[int, int]:
        return (sum(len(k) + (len(v) if isinstance(v, bytes) else 16) for k, (v, _) in self._data.items()), 0)

    async def close(self) -> None:
        for sub in list(self._subscribers):
            await sub.close()
