"""Cost and capacity limits on answering.

- `ModelCallLimiter`: at most `concurrency` model calls at once in this process, with a
  bounded FIFO of waiters. `reserve()` is non-blocking and runs before the response
  starts, so a full queue is a plain 503 with Retry-After; the wait itself happens inside
  the stream (after the first keep-alive), bounded by the queue timeout and the request
  deadline. A permit is held until the model's stream ends.
- `ChatLimits`: the per-user request rate (Valkey token bucket, shared by every task)
  and the per-user daily token budget (PostgreSQL), both 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
import uuid
from datetime import UTC, datetime, timedelta

from sage.errors import RateLimited, Unavailable
from sage.observability.metrics import Metrics
from sage.store.ratelimit import RateLimiter


class QueueTimeout(Exception):
    """No permit came free within the queue timeout (or before the request deadline)."""


class Ticket:
    """A place in the model-call line: granted at once, or a future that a release fulfils."""

    def __init__(self, limiter: ModelCallLimiter, waiter: asyncio.Future[None] | None) -> None:
        self._limiter = limiter
        self._waiter = waiter
        self.granted = waiter is None
        self.released = False
        self._granted_at = time.monotonic() if self.granted else 0.0
        self.queued_seconds = 0.0

    async def acquire(self, timeout: float) -> None:
        """Wait for the permit; raises QueueTimeout, and gives the place back on any exit."""
        if self.granted:
            return
        assert self._waiter is not None
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await asyncio.shield(self._waiter)
        except TimeoutError as exc:
            self._abandon()
            raise QueueTimeout from exc
        except BaseException:
            self._abandon()
            raise
        finally:
            self.queued_seconds = time.monotonic() - started
        self._waiter = None
        self.granted = True
        self._granted_at = time.monotonic()

    def _abandon(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None:
            return
        if waiter.done() and not waiter.cancelled():
            self._limiter._release(0.0)  # a release handed us the permit just as we gave up: pass it on
            return
        waiter.cancel()
        self._limiter._forget(waiter)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.granted:
            self._limiter._release(time.monotonic() - self._granted_at)
        else:
            self._abandon()


class ModelCallLimiter:
    def __init__(self, concurrency: int, queue_size: int, metrics: Metrics | None = None) -> None:
        self.concurrency = concurrency
        self.queue_size = queue_size
        self.metrics = metrics
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._hold_ewma = 10.0  # seconds a call holds a permit, smoothed; seeds Retry-After

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def retry_after(self) -> float:
        """A rough wait for a free place: queued calls ahead, divided over the permits."""
        estimate = self._hold_ewma * (self.waiting + 1) / max(1, self.concurrency)
        return float(min(60, max(1, math.ceil(estimate))))

    def reserve(self) -> Ticket:
        if self.active < self.concurrency and not self._waiters:
            self.active += 1
            return Ticket(self, None)
        if len(self._waiters) >= self.queue_size:
            if self.metrics is not None:
                self.metrics.incr("LLMQueueRejected")
            raise Unavailable(
                "Sage is answering as many questions as it can right now; please try again shortly",
                retry_after=self.retry_after(),
                details={"reason": "model_queue_full", "queue_size": self.queue_size},
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._report()
        return Ticket(self, waiter)

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass
        self._report()

    def _release(self, held_seconds: float) -> None:
        self._hold_ewma = 0.9 * self._hold_ewma + 0.1 * held_seconds
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the permit passes straight to the next in line
                self._report()
                return
        self.active -= 1
        self._report()

    def _report(self) -> None:
        if self.metrics is not None:
            self.metrics.gauge("LLMQueueSize", float(len(self._waiters)))
            self.metrics.gauge("LLMActiveCalls", float(self.active))


def seconds_until_next_utc_day(now: datetime | None = None) -> float:
    now = now or datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (tomorrow - now).total_seconds())


class ChatLimits:
    def __init__(self, limiter: RateLimiter, *, rate_per_minute: int, daily_token_budget: int) -> None:
        self.limiter = limiter
        self.rate_per_minute = rate_per_minute
        self.daily_token_budget = daily_token_budget

    async def take_request(self, user_id: uuid.UUID) -> None:
        """One request from the user's bucket (capacity = the per-minute rate, refilled evenly)."""
        await self.limiter.take(
            "chat", str(user_id), capacity=self.rate_per_minute, per_second=self.rate_per_minute / 60.0
        )

    def check_budget(self, used_today: int) -> None:
        if used_today >= self.daily_token_budget:
            raise RateLimited(
                "Your daily AI token budget is used up; it resets at 00:00 UTC",
                retry_after=seconds_until_next_utc_day(),
                details={"scope": "chat_daily_tokens", "budget": self.daily_token_budget, "used": used_today},
            )
