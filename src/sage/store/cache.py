"""The cache: one interface, two implementations (Valkey and in-process).

`CacheBackend` is the raw contract; both `ValkeyBackend` and `MemoryBackend` pass the same
contract tests (tests/store/test_cache_contract.py). Domain code talks to `Cache`, which
adds JSON helpers, single-flight get-or-compute, and resilience: when Valkey goes away,
reads miss, writes are skipped and the caller falls through to the source; errors are
logged once per interval, and valkey-py reconnects by itself on the next command.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson

from sage.settings import Settings
from sage.singleflight import SingleFlight

log = logging.getLogger(__name__)
T = TypeVar("T")


class CacheUnavailable(Exception):
    """The backend could not be reached (connection refused, timeout, reset)."""


@dataclass(frozen=True)
class TTL:
    """The spec's TTL strategy, in seconds; each is configurable (SAGE_CACHE_TTL_*), and
    Settings holds the defaults."""

    market_price: int
    fear_greed: int
    user_chat_list: int
    ai_response: int

    @classmethod
    def from_settings(cls, settings: Settings) -> TTL:
        return cls(
            market_price=settings.cache_ttl_market_price,
            fear_greed=settings.cache_ttl_fear_greed,
            user_chat_list=settings.cache_ttl_user_chat_list,
            ai_response=settings.cache_ttl_ai_response,
        )


@dataclass(frozen=True)
class WindowHit:
    count: int
    retry_after: float  # seconds until the window resets


class Subscription(Protocol):
    """An open pub/sub subscription; iterate to receive (channel, payload)."""

    def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]: ...

    async def close(self) -> None: ...


class CacheBackend(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False) -> bool: ...

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None: ...

    async def delete(self, *keys: str) -> int: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left; None when the key is missing or has no expiry."""
        ...

    async def keys(self, pattern: str) -> list[str]:
        """Keys matching a glob pattern (SCAN on Valkey; never KEYS)."""
        ...

    async def hit_window(self, key: str, window_seconds: float) -> WindowHit:
        """Count one hit in a fixed window that starts at the first hit."""
        ...

    async def take_token(self, key: str, capacity: float, refill_per_second: float, cost: float = 1) -> float:
        """Token bucket: 0.0 when the tokens were taken, else seconds until they would be."""
        ...

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take the lease if free, or renew it if `owner` holds it."""
        ...

    async def release_lease(self, key: str, owner: str) -> bool: ...

    async def zadd(self, key: str, members: Mapping[str, float], ttl: float | None = None) -> int:
        """Sorted set: set each member's score; the key expires `ttl` after the last add.
        Returns how many members were new."""
        ...

    async def zrange_desc(self, key: str, min_score: float, limit: int) -> list[tuple[str, float]]:
        """Members scoring at least `min_score`, highest first, at most `limit`."""
        ...

    async def zrem_below(self, key: str, max_score: float) -> int:
        """Remove members scoring below `max_score`."""
        ...

    async def publish(self, channel: str, message: bytes) -> int: ...

    async def set_many_and_publish(
        self, items: Mapping[str, bytes], ttl: float | None, channel: str, messages: Sequence[bytes]
    ) -> list[BaseException | None]:
        """`set_many(items, ttl)`, then `publish(channel, m)` for each message, in one round trip
        where the backend can. The outcome of each part in that order: None, or what it failed
        with (`CacheUnavailable` when the store could not be reached)."""
        ...

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        """Exact channel names, or glob patterns when a name contains `*`."""
        ...

    async def ping(self) -> None: ...

    async def info_memory(self) -> tuple[int, int]:
        """(used bytes, max bytes; 0 when unlimited)."""
        ...

    async def close(self) -> None: ...


class Cache:
    """What the domain uses: a backend plus JSON, single-flight and fall-through."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        ttl: TTL | None = None,
        prefix: str = "sage:",
        error_log_interval: float = 30.0,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.ttl = ttl or TTL.from_settings(Settings.model_construct())
        self.prefix = prefix
        self._flights: SingleFlight[Any] = SingleFlight()
        self._error_log_interval = error_log_interval
        self._last_error_log = -float("inf")
        self._suppressed_errors = 0
        self._on_error = on_error
        self.errors = 0

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    # -- resilience -----------------------------------------------------------------------------
    def report_failure(self, operation: str, exc: BaseException) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error()
        now = time.monotonic()
        if now - self._last_error_log >= self._error_log_interval:
            log.warning(
                "cache unavailable; falling through to the source",
                extra={
                    "operation": operation,
                    "error": type(exc).__name__,
                    "suppressed": self._suppressed_errors,
                },
            )
            self._last_error_log = now
            self._suppressed_errors = 0
        else:
            self._suppressed_errors += 1

    async def get_bytes(self, key: str) -> bytes | None:
        try:
            return await self.backend.get(key)
        except CacheUnavailable as exc:
            self.report_failure("get", exc)
            return None

    async def set_bytes(self, key: str, value: bytes, ttl: float | None) -> None:
        try:
            await self.backend.set(key, value, ttl)
        except CacheUnavailable as exc:
            self.report_failure("set", exc)

    async def get_json(self, key: str) -> Any | None:
        raw = await self.get_bytes(key)
        return None if raw is None else orjson.loads(raw)

    async def set_json(self, key: str, value: Any, ttl: float | None) -> None:
        await self.set_bytes(key, orjson.dumps(value), ttl)

    async def delete(self, *keys: str) -> None:
        try:
            await self.backend.delete(*keys)
        except CacheUnavailable as exc:
            self.report_failure("delete", exc)

    async def get_or_compute(self, key: str, ttl: float, compute: Callable[[], Awaitable[T]]) -> T:
        """Cached JSON value, or compute it once however many callers ask at the same time.

        Single-flight is per process: concurrent misses on one key share one computation.
        When the cache is down every call still gets a value (from `compute`).
        """
        cached = await self.get_json(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]

        async def computed() -> Any:
            value = await compute()
            await self.set_json(key, value, ttl)
            return value

        return await self._flights.run(key, computed)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.backend.close()
