"""Valkey backend (valkey-py, asyncio). Every connection error becomes CacheUnavailable.

Atomic operations (fixed windows, token buckets, leases) are Lua scripts so they hold
across every API task. Short socket timeouts keep a dead Valkey from stalling requests;
the connection pool reconnects on the next command. Subscriptions use connections of their
own with no read timeout (a quiet channel is not a dead server; TCP keep-alive finds those).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import valkey.asyncio as valkey
from valkey.asyncio.connection import BlockingConnectionPool
from valkey.exceptions import ConnectionError as ValkeyConnectionError
from valkey.exceptions import TimeoutError as ValkeyTimeoutError

from sage.store.cache import CacheUnavailable, WindowHit

_UNAVAILABLE = (ValkeyConnectionError, ValkeyTimeoutError, OSError, asyncio.TimeoutError)

# A subscription's socket waits for the next message as long as the channel stays quiet;
# the kernel probes an idle connection and reports a dead peer within about 30 s.
_KEEPALIVE_OPTIONS = {
    getattr(socket, name): value
    for name, value in (("TCP_KEEPIDLE", 15), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}

_HIT_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""

# state: "tokens stamp_ms"; the clock is the server's, so every task agrees on time.
_TAKE_TOKEN = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('GET', KEYS[1])
local tokens = capacity
local stamp = now
if state then
  local sep = string.find(state, ' ')
  tokens = tonumber(string.sub(state, 1, sep - 1))
  stamp = tonumber(string.sub(state, sep + 1))
end
tokens = math.min(capacity, tokens + (now - stamp) / 1000 * rate)
local ttl = math.ceil((capacity / rate + 1) * 1000)
if tokens >= cost then
  redis.call('SET', KEYS[1], tostring(tokens - cost) .. ' ' .. now, 'PX', ttl)
  return '0'
end
redis.call('SET', KEYS[1], tostring(tokens) .. ' ' .. now, 'PX', ttl)
return tostring((cost - tokens) / rate)
"""

_ACQUIRE_LEASE = """
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _ValkeySubscription:
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]:
        try:
            async for message in self._pubsub.listen():
                if message["type"] in ("message", "pmessage"):
                    channel = message["channel"]
                    yield (channel.decode() if isinstance(channel, bytes) else channel), message["data"]
        except _UNAVAILABLE as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def close(self) -> None:
        try:
            await self._pubsub.aclose()
        except _UNAVAILABLE:
            pass


def _px(ttl: float | None) -> int | None:
    """A TTL in seconds as SET's PX (at least 1 ms), or None for no expiry."""
    return None if ttl is None else max(1, int(ttl * 1000))


def _unavailable(exc: BaseException) -> CacheUnavailable:
    return CacheUnavailable(f"{type(exc).__name__}: {exc}")


class ValkeyBackend:
    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        self.url = url
        # A blocking pool: under a burst (1,000 SSE streams) callers wait briefly for a connection
        # instead of failing with "too many connections"; the wait is bounded by the timeout.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=max(timeout, 1.0),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=15,
        )
        self.client: valkey.Valkey = valkey.Valkey(connection_pool=pool)
        # Pub/sub gets its own pool: the commands' 1 s socket timeout would end a subscription
        # whose channel is quiet for a second (valkey-py reads a subscription with the socket
        # timeout), losing whatever was published while it resubscribed.
        self._subscriber: valkey.Valkey = valkey.Valkey.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=timeout,
            socket_keepalive=True,
            socket_keepalive_options=_KEEPALIVE_OPTIONS,
        )
        self._hit_window = self.client.register_script(_HIT_WINDOW)
        self._take_token = self.client.register_script(_TAKE_TOKEN)
        self._acquire = self.client.register_script(_ACQUIRE_LEASE)
        self._release = self.client.register_script(_RELEASE_LEASE)

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except _UNAVAILABLE as exc:
            raise _unavailable(exc) from exc

    def _sets(self, items: Mapping[str, bytes], ttl: float | None) -> Any:
        """A pipeline (not a transaction) holding a SET of each item."""
        pipe = self.client.pipeline(transaction=False)
        px = _px(ttl)
        for key, value in items.items():
            pipe.set(key, value, px=px)
        return pipe

    async def get(self, key: str) -> bytes | None:
        return await self._call(self.client.get(key))  # type: ignore[no-any-return]

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        return list(await self._call(self.client.mget(keys)))

    async def set(self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False) -> bool:
        return bool(await self._call(self.client.set(key, value, px=_px(ttl), nx=nx)))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        if not items:
            return
        await self._call(self._sets(items, ttl).execute())

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self._call(self.client.delete(*keys)))

    async def ttl(self, key: str) -> float | None:
        ms = int(await self._call(self.client.pttl(key)))
        return None if ms < 0 else ms / 1000

    async def keys(self, pattern: str) -> list[str]:
        found: list[str] = []
        async for key in self.client.scan_iter(match=pattern, count=500):
            found.append(key.decode() if isinstance(key, bytes) else key)
        return found

    async def hit_window(self, key: str, window_seconds: float) -> WindowHit:
        count, ttl_ms = await self._call(self._hit_window(keys=[key], args=[max(1, int(window_seconds * 1000))]))
        return WindowHit(int(count), int(ttl_ms) / 1000)

    async def take_token(self, key: str, capacity: float, refill_per_second: float, cost: float = 1) -> float:
        wait = await self._call(self._take_token(keys=[key], args=[capacity, refill_per_second, cost]))
        return float(wait)

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        return bool(await self._call(self._acquire(keys=[key], args=[owner, max(1, int(ttl * 1000))])))

    async def release_lease(self, key: str, owner: str) -> bool:
        return bool(await self._call(self._release(keys=[key], args=[owner])))

    async def zadd(self, key: str, members: Mapping[str, float], ttl: float | None = None) -> int:
        if not members:
            return 0
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(key, dict(members))
        if ttl is not None:
            pipe.pexpire(key, max(1, int(ttl * 1000)))
        results = await self._call(pipe.execute())
        return int(results[0])

    async def zrange_desc(self, key: str, min_score: float, limit: int) -> list[tuple[str, float]]:
        rows = await self._call(
            self.client.zrevrangebyscore(key, "+inf", min_score, start=0, num=limit, withscores=True)
        )
        return [(m.decode() if isinstance(m, bytes) else m, float(score)) for m, score in rows]

    async def zrem_below(self, key: str, max_score: float) -> int:
        return int(await self._call(self.client.zremrangebyscore(key, "-inf", f"({max_score}")))

    async def publish(self, channel: str, message: bytes) -> int:
        return int(await self._call(self.client.publish(channel, message)))

    async def set_many_and_publish(
        self, items: Mapping[str, bytes], ttl: float | None, channel: str, messages: Sequence[bytes]
    ) -> list[BaseException | None]:
        # One pipeline: one round trip and one pooled connection. A command the server refuses
        # comes back as its error in place; a lost connection fails them all.
        pipe = self._sets(items, ttl)
        for message in messages:
            pipe.publish(channel, message)
        try:
            results = await pipe.execute(raise_on_error=False)
        except _UNAVAILABLE as exc:
            return [_unavailable(exc)] * (1 + len(messages))
        stored = results[: len(items)]
        refused = next((r for r in stored if isinstance(r, BaseException)), None)
        return [refused, *(r if isinstance(r, BaseException) else None for r in results[len(items) :])]

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[_ValkeySubscription]:
        pubsub = self._subscriber.pubsub()
        exact = [c for c in channels if "*" not in c]
        patterns = [c for c in channels if "*" in c]
        if exact:
            await self._call(pubsub.subscribe(*exact))
        if patterns:
            await self._call(pubsub.psubscribe(*patterns))
        sub = _ValkeySubscription(pubsub)
        try:
            yield sub
        finally:
            await sub.close()

    async def ping(self) -> None:
        await self._call(self.client.ping())

    async def info_memory(self) -> tuple[int, int]:
        info = await self._call(self.client.info("memory"))
        return int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))

    async def close(self) -> None:
        for client in (self.client, self._subscriber):
            try:
                await client.aclose()
            except _UNAVAILABLE:
                pass
