"""Rate limits shared by every API task (Valkey-backed; in-process in the embedded default).

When the cache is unreachable the limits fall back to this process's own counters with the
same parameters (an in-process backend of the same contract): each task then enforces the
limit by itself, so N tasks admit at most N times the limit during an outage, never an
unlimited stream. The cache logs the outage once per interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sage.errors import RateLimited
from sage.store.cache import Cache, CacheBackend, CacheUnavailable
from sage.store.cache_memory import MemoryBackend

_PURGE_EVERY_SECONDS = 60.0  # drop expired fallback counters so an outage cannot grow memory


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window_seconds: float


class RateLimiter:
    def __init__(self, cache: Cache, *, fallback: MemoryBackend | None = None) -> None:
        self.cache = cache
        self.fallback = fallback or MemoryBackend()
        self._last_purge = time.monotonic()

    def _local(self, operation: str, exc: CacheUnavailable) -> CacheBackend:
        self.cache.report_failure(operation, exc)
        now = time.monotonic()
        if now - self._last_purge >= _PURGE_EVERY_SECONDS:
            self._last_purge = now
            self.fallback.purge_expired()
        return self.fallback

    async def check(self, limit: Limit, subject: str) -> None:
        """Count one hit for `subject`; raise RateLimited (429 + Retry-After) past the limit."""
        key = self.cache.key("rl", limit.name, subject)
        try:
            hit = await self.cache.backend.hit_window(key, limit.window_seconds)
        except CacheUnavailable as exc:
            hit = await self._local("rate_limit", exc).hit_window(key, limit.window_seconds)
        if hit.count > limit.limit:
            raise RateLimited(
                f"Too many requests; try again in {max(1, round(hit.retry_after))} s",
                retry_after=hit.retry_after,
                details={"limit": limit.limit, "window_seconds": limit.window_seconds, "scope": limit.name},
            )

    async def take(self, name: str, subject: str, *, capacity: float, per_second: float, cost: float = 1) -> None:
        """Token bucket variant: smooth per-user request rates (chat)."""
        key = self.cache.key("tb", name, subject)
        try:
            wait = await self.cache.backend.take_token(key, capacity, per_second, cost)
        except CacheUnavailable as exc:
            wait = await self._local("rate_limit", exc).take_token(key, capacity, per_second, cost)
        if wait > 0:
            raise RateLimited(
                f"Too many requests; try again in {max(1, round(wait))} s",
                retry_after=wait,
                details={"scope": name, "capacity": capacity, "per_second": per_second},
            )
