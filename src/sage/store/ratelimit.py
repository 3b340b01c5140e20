"""Rate limits shared by every API task (Valkey-backed; in-process in the embedded default).

When the cache is unreachable the limiter lets the request through: refusing every
login because Valkey blinked would be worse than a short unlimited window. The cache
logs that outage once per interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from sage.errors import RateLimited
from sage.store.cache import Cache, CacheUnavailable


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window_seconds: float


class RateLimiter:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def check(self, limit: Limit, subject: str) -> None:
        """Count one hit for `subject`; raise RateLimited (429 + Retry-After) past the limit."""
        key = self.cache.key("rl", limit.name, subject)
        try:
            hit = await self.cache.backend.hit_window(key, limit.window_seconds)
        except CacheUnavailable as exc:
            self.cache.report_failure("rate_limit", exc)
            return
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
            self.cache.report_failure("rate_limit", exc)
            return
        if wait > 0:
            raise RateLimited(
                f"Too many requests; try again in {max(1, round(wait))} s",
                retry_after=wait,
                details={"scope": name, "capacity": capacity, "per_second": per_second},
            )
