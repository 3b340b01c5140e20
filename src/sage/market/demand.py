"""The demand set: symbols users view, hold, alert on or ask about, beyond SAGE_SYMBOLS.

A Valkey sorted set `sage:market:demand` of symbol -> when it was last demanded (epoch
seconds). Every API task adds to it (`MarketService.demand`, called for each symbol a
request names); entries older than SAGE_DEMAND_TTL_SECONDS no longer count and are pruned.
The ingestor reads the most recently demanded SAGE_MAX_LIVE_SYMBOLS and subscribes to
them; a symbol demanded for the first time is also announced on a pub/sub channel so the
ingestor subscribes at once instead of at its next poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import orjson

from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)


class DemandSet:
    def __init__(self, cache: Cache, *, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.cache = cache
        self.ttl = ttl
        self.clock = clock
        self.key = cache.key("market", "demand")
        self.channel = cache.key("market", "demand", "new")
        # Per-process: a symbol is re-touched at most every ttl/10, so a busy symbol
        # costs Valkey one write per ~90 s per task, not one per request.
        self._touched: dict[str, float] = {}

    async def touch(self, symbols: Iterable[str]) -> list[str]:
        """Mark `symbols` demanded now; returns those that were not in the set."""
        now = self.clock()
        due = {s: now for s in symbols if now - self._touched.get(s, -1e18) >= self.ttl / 10}
        if not due:
            return []
        try:
            # One ZADD per symbol: its count says whether that symbol is new (a request
            # names one to a few symbols).
            new = [s for s in due if await self.cache.backend.zadd(self.key, {s: now}, ttl=self.ttl * 2)]
            if new:
                await self.cache.backend.publish(self.channel, orjson.dumps(new))
        except CacheUnavailable as exc:
            self.cache.report_failure("market demand", exc)
            return []
        self._touched.update(due)
        if len(self._touched) > 10_000:
            self._touched = {s: t for s, t in self._touched.items() if now - t < self.ttl}
        return new

    async def current(self, limit: int) -> list[str]:
        """The `limit` most recently demanded symbols still within the TTL, newest first;
        expired entries are pruned on the way."""
        if limit <= 0:
            return []
        cutoff = self.clock() - self.ttl
        await self.cache.backend.zrem_below(self.key, cutoff)
        return [m for m, _ in await self.cache.backend.zrange_desc(self.key, cutoff, limit)]
