"""The observability services the composition root builds, and rules that reach Discord."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.notify import Notifier
from sage.observability.active_users import ActiveUsers
from sage.observability.metrics import Metrics
from sage.observability.service import AlertRuleRunner
from sage.store.cache import Cache
from sage.store.cache_memory import MemoryBackend
from tests.notify.fake_discord import FakeDiscord


async def test_the_hook_offers_notifier_active_users_and_rules_to_other_domains(app_client):
    services = app_client.app.state.runtime.services
    assert isinstance(services.notifier, Notifier)
    assert isinstance(services.active_users, ActiveUsers)
    assert isinstance(services.alert_rules, AlertRuleRunner)


async def test_the_hook_samples_the_database_pool(app_client):
    runtime = app_client.app.state.runtime
    await runtime.services.alert_rules.tick()
    assert runtime.metrics.value("DBPoolSize") == runtime.settings.db_pool_size + runtime.settings.db_max_overflow


async def test_a_burst_of_server_errors_reaches_the_errors_channel_once(
    discord: FakeDiscord, make_settings, database_url, valkey_url
):
    settings = make_settings(
        database_url=database_url,
        valkey_url=valkey_url,
        discord_webhook_errors=discord.url("errors"),
        alert_error_rate_min_requests=5,
        alert_eval_seconds=3600,  # the test drives evaluation itself
    )
    app = create_app(settings, metrics=Metrics())

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("database exploded")

    app.router.routes.insert(0, app.router.routes.pop())  # before the frontend's catch-all mount
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            for _ in range(10):
                assert (await client.get("/fail")).status_code == 500
            service: AlertRuleRunner = app.state.runtime.services.alert_rules
            await service.tick()
            await service.tick()  # still failing: no second message
            notifier: Notifier = app.state.runtime.services.notifier
            await notifier.flush(10)
    [embed] = discord.embeds("errors")
    assert embed["title"] == "🔴 CRITICAL API error rate above 5 %"
    values = {f["name"]: f["value"] for f in embed["fields"]}
    assert values["Value"] == "100.0 %"
    assert "10 of 10 requests answered 5xx" in values["Error"]


class FullValkey(MemoryBackend):
    async def info_memory(self) -> tuple[int, int]:
        return 900, 1000


@pytest.fixture
def shared_cache() -> Cache:
    return Cache(FullValkey())


def _task(settings, cache: Cache, notifier: Notifier, name: str) -> AlertRuleRunner:
    metrics = Metrics()
    db = SimpleNamespace(pool_status=lambda: (1, 7))
    users = ActiveUsers(cache, metrics)
    return AlertRuleRunner(settings, db, cache, metrics, notifier, users, task=name)  # type: ignore[arg-type]


async def test_a_shared_resource_is_announced_by_one_task_only(discord: FakeDiscord, make_settings, shared_cache):
    settings = make_settings(discord_webhook_performance=discord.url("perf"))
    notifier = Notifier.from_settings(settings, Metrics())
    await notifier.start()
    tasks = [_task(settings, Cache(shared_cache.backend), notifier, f"task-{i}") for i in range(3)]
    for task in tasks:
        await task.tick(now=1_000.0)
    await notifier.aclose(10)
    titles = [e["title"] for e in discord.embeds("perf")]
    assert titles == ["🟠 WARNING Valkey memory above 80 %"]


async def test_alert_rules_can_be_switched_off(discord: FakeDiscord, make_settings, shared_cache):
    settings = make_settings(discord_webhook_performance=discord.url("perf"), alerts_enabled=False)
    notifier = Notifier.from_settings(settings, Metrics())
    await notifier.start()
    task = _task(settings, shared_cache, notifier, "task")
    await task.tick(now=1_000.0)
    await notifier.aclose(10)
    assert discord.embeds("perf") == []
    assert task.metrics.value("ValkeyMemoryUsage") == 90.0  # the gauges are still sampled
