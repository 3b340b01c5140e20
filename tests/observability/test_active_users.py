"""Daily active users: distinct per UTC day, across tasks, with milestones announced once."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from sage.observability.active_users import ActiveUsers
from sage.observability.metrics import Metrics
from sage.store.cache import Cache
from sage.store.cache_setup import create_backend
from tests.support.api import register_and_login

DAY = date(2025, 3, 1)


@pytest.fixture
async def caches(valkey_url):
    """Two connections to one Valkey: two API tasks."""
    made = [Cache(create_backend(valkey_url)) for _ in range(2)]
    yield made
    for cache in made:
        await cache.close()


async def test_a_user_counts_once_however_often_they_are_seen(caches):
    users = ActiveUsers(caches[0], Metrics(), today=lambda: DAY)
    for _ in range(5):
        users.record_active("u1")
    users.record_active("u2")
    await users.drain()
    assert await users.count(DAY) == 2
    assert users.metrics.value("DailyActiveUsers") == 2


async def test_users_seen_by_different_tasks_are_counted_once(caches):
    first = ActiveUsers(caches[0], Metrics(), today=lambda: DAY)
    second = ActiveUsers(caches[1], Metrics(), today=lambda: DAY)
    first.record_active("u1")
    second.record_active("u1")
    second.record_active("u2")
    await first.drain()
    await second.drain()
    assert await first.count(DAY) == 2


async def test_each_utc_day_is_counted_separately(caches):
    days = iter([date(2025, 3, 1), date(2025, 3, 2)])
    current = {"day": next(days)}
    users = ActiveUsers(caches[0], Metrics(), today=lambda: current["day"])
    users.record_active("u1")
    await users.drain()
    current["day"] = next(days)
    users.record_active("u1")  # the memo is per day: this is a new day's first visit
    await users.drain()
    assert await users.count(date(2025, 3, 1)) == 1
    assert await users.count(date(2025, 3, 2)) == 1


async def test_a_milestone_is_announced_exactly_once_across_tasks(caches):
    reached: list[int] = []
    trackers = [
        ActiveUsers(cache, Metrics(), milestones=[3, 5], on_milestone=lambda n, d: reached.append(n), today=lambda: DAY)
        for cache in caches
    ]
    for i in range(6):
        trackers[i % 2].record_active(f"user-{i}")
        trackers[(i + 1) % 2].record_active(f"user-{i}")  # every user seen by both tasks
    for t in trackers:
        await t.drain()
    assert sorted(reached) == [3, 5]


async def test_recording_survives_an_unreachable_cache():
    cache = Cache(create_backend("redis://127.0.0.1:1/0", timeout=0.2))
    users = ActiveUsers(cache, Metrics(), today=lambda: DAY)
    users.record_active("u1")
    await users.drain()
    assert cache.errors >= 1
    await cache.close()


async def test_an_authenticated_request_records_its_user(app_client):
    tokens = await register_and_login(app_client)
    response = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200
    users: ActiveUsers = app_client.app.state.runtime.services.active_users
    await users.drain()
    assert await users.count() == 1
    assert uuid.UUID(response.json()["id"])
