"""Daily active users, counted once per user per UTC day across every API task.

One key per (day, user) set with NX in the cache, and a per-day counter bumped only when
that key is new: the counter is exact across tasks, and each milestone (10, 100, ...) is
reached by exactly one increment, so exactly one task announces it. A per-process memo
means a user costs one cache round-trip per day per task, not one per request, and the
write happens in the background so authentication never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from sage.observability.metrics import Metrics
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

KEEP_SECONDS = 3 * 24 * 3600  # yesterday's set must outlive the daily summary
MEMO_LIMIT = 200_000


class ActiveUsers:
    def __init__(
        self,
        cache: Cache,
        metrics: Metrics,
        *,
        milestones: Iterable[int] = (),
        on_milestone: Callable[[int, date], None] | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.milestones = frozenset(milestones)
        self.on_milestone = on_milestone
        self._today = today
        self._day: date | None = None
        self._seen: set[str] = set()
        self._gauge_day: date | None = None
        self._gauge_count = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def _member_key(self, day: date, user: str) -> str:
        return self.cache.key("dau", day.isoformat(), user)

    def _count_key(self, day: date) -> str:
        return self.cache.key("dau-count", day.isoformat())

    def record_active(self, user_id: Any) -> None:
        """Note that a user was active today. Returns at once; never raises."""
        try:
            day = self._today()
            if day != self._day:
                self._day = day
                self._seen.clear()
            user = str(user_id)
            if user in self._seen:
                return
            if len(self._seen) >= MEMO_LIMIT:
                self._seen.clear()
            self._seen.add(user)
            task = asyncio.get_running_loop().create_task(self._record(day, user))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        except Exception:
            log.exception("could not record an active user")

    async def _record(self, day: date, user: str) -> None:
        try:
            fresh = await self.cache.backend.set(self._member_key(day, user), b"1", KEEP_SECONDS, nx=True)
            if not fresh:
                return
            hit = await self.cache.backend.hit_window(self._count_key(day), KEEP_SECONDS)
        except CacheUnavailable as exc:
            self.cache.report_failure("dau", exc)
            self._seen.discard(user)  # try again on the user's next request
            return
        # Replies to concurrent increments can arrive in any order: the day's count only
        # grows, so the gauge shows the highest reply seen for the day, never a late smaller one.
        if day != self._gauge_day:
            self._gauge_day, self._gauge_count = day, 0
        if hit.count > self._gauge_count:
            self._gauge_count = hit.count
            self.metrics.gauge("DailyActiveUsers", hit.count, unit="Count")
        if hit.count in self.milestones and self.on_milestone is not None:
            self.on_milestone(hit.count, day)

    async def count(self, day: date | None = None) -> int:
        """Distinct active users on a UTC day (today by default)."""
        day = day or self._today()
        try:
            return len(await self.cache.backend.keys(self._member_key(day, "*")))
        except CacheUnavailable as exc:
            self.cache.report_failure("dau", exc)
            return 0

    async def drain(self) -> None:
        """Wait for the writes in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
