"""The model-call limiter: permits, a bounded FIFO queue, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from sage.chat.limits import ModelCallLimiter, QueueTimeout, seconds_until_next_utc_day
from sage.errors import Unavailable
from sage.observability.metrics import Metrics


async def test_permits_are_granted_up_to_the_concurrency_then_queued():
    limiter = ModelCallLimiter(concurrency=2, queue_size=1)
    first, second = limiter.reserve(), limiter.reserve()
    third = limiter.reserve()
    assert first.granted and second.granted and not third.granted
    assert limiter.waiting == 1


async def test_a_full_queue_refuses_with_a_retry_after():
    metrics = Metrics()
    limiter = ModelCallLimiter(concurrency=1, queue_size=1, metrics=metrics)
    limiter.reserve()
    limiter.reserve()
    with pytest.raises(Unavailable) as refused:
        limiter.reserve()
    assert int(refused.value.headers["Retry-After"]) >= 1
    assert metrics.value("LLMQueueSize") == 1


async def test_a_released_permit_goes_to_the_first_in_line():
    limiter = ModelCallLimiter(concurrency=1, queue_size=5)
    holder = limiter.reserve()
    first, second = limiter.reserve(), limiter.reserve()
    waiting = [asyncio.create_task(first.acquire(10)), asyncio.create_task(second.acquire(10))]
    await asyncio.sleep(0)
    holder.release()
    await waiting[0]
    assert not waiting[1].done() and limiter.active == 1
    first.release()
    await waiting[1]
    second.release()
    assert limiter.active == 0 and limiter.waiting == 0


async def test_a_wait_that_times_out_gives_its_place_back():
    limiter = ModelCallLimiter(concurrency=1, queue_size=1)
    holder = limiter.reserve()
    ticket = limiter.reserve()
    with pytest.raises(QueueTimeout):
        await ticket.acquire(0.01)
    assert limiter.waiting == 0
    holder.release()
    assert limiter.active == 0
    assert limiter.reserve().granted


async def test_releasing_an_unused_reservation_frees_the_queue_place():
    limiter = ModelCallLimiter(concurrency=1, queue_size=1)
    holder = limiter.reserve()
    queued = limiter.reserve()
    queued.release()
    assert limiter.waiting == 0
    holder.release()
    assert limiter.active == 0


async def test_a_cancelled_wait_gives_its_place_back():
    limiter = ModelCallLimiter(concurrency=1, queue_size=1)
    limiter.reserve()
    ticket = limiter.reserve()
    task = asyncio.create_task(ticket.acquire(10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.waiting == 0


def test_the_budget_resets_at_the_next_utc_midnight():
    from datetime import UTC, datetime

    assert seconds_until_next_utc_day(datetime(2026, 11, 22, 23, 0, tzinfo=UTC)) == 3600
