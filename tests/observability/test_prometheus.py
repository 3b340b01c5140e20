"""Prometheus exposition: it parses, and /metrics is closed where it must be."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from sage.app import create_app
from sage.observability.metrics import Metrics
from sage.observability.prometheus import PrometheusSink, metric_name


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metric_names_follow_prometheus_conventions():
    assert metric_name("RequestLatency", "Milliseconds") == "sage_request_latency_milliseconds"
    assert metric_name("DBPoolUsage", "Percent") == "sage_db_pool_usage_percent"
    assert metric_name("Http5xx", "Count") == "sage_http5xx"
    assert metric_name("ValkeyMemoryUsed", "Bytes") == "sage_valkey_memory_used_bytes"


def test_the_exposition_parses_and_carries_counters_gauges_and_histograms():
    sink = PrometheusSink(process_metrics=False)
    metrics = Metrics([sink])
    metrics.incr("Requests", route="/a")
    metrics.incr("Requests", route="/a")
    metrics.incr("Requests", route="/b")
    metrics.gauge("DBPoolUsage", 42.5, unit="Percent")
    for value in (3, 30, 300, 3000):
        metrics.observe("RequestLatency", value, route="/a", method="GET")
    parsed = families(sink.render().decode())

    requests = {s.labels["route"]: s.value for s in parsed["sage_requests"].samples if s.name.endswith("_total")}
    assert requests == {"/a": 2.0, "/b": 1.0}
    assert parsed["sage_requests"].type == "counter"
    [pool] = parsed["sage_db_pool_usage_percent"].samples
    assert pool.value == 42.5
    latency = parsed["sage_request_latency_milliseconds"]
    assert latency.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in latency.samples if s.name.endswith("_bucket")}
    assert buckets["5.0"] == 1 and buckets["50.0"] == 2 and buckets["500.0"] == 3 and buckets["+Inf"] == 4
    count = next(s.value for s in latency.samples if s.name.endswith("_count"))
    total = next(s.value for s in latency.samples if s.name.endswith("_sum"))
    assert (count, total) == (4, 3333)


def test_series_with_different_label_sets_share_one_family():
    sink = PrometheusSink(process_metrics=False)
    metrics = Metrics([sink])
    metrics.incr("TokensUsed", 10, kind="input")
    metrics.incr("TokensUsed", 5)
    parsed = families(sink.render().decode())
    values = {
        s.labels.get("kind", ""): s.value for s in parsed["sage_tokens_used"].samples if s.name.endswith("_total")
    }
    assert values == {"input": 10, "": 5}


def test_each_app_has_its_own_registry():
    first, second = PrometheusSink(process_metrics=False), PrometheusSink(process_metrics=False)
    Metrics([first]).incr("Requests")
    assert "sage_requests" not in second.render().decode()


async def _get(settings, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    app = create_app(settings, metrics=Metrics())
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            await client.get("/health")
            return await client.get(path, headers=headers or {})


async def test_metrics_endpoint_serves_the_apps_own_metrics_in_development(app_client):
    await app_client.get("/health")
    response = await app_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    parsed = families(response.text)
    routes = {s.labels["route"] for s in parsed["sage_requests"].samples}
    assert "/health" in routes


async def test_metrics_endpoint_is_absent_in_production_without_a_token(make_settings, database_url, valkey_url):
    settings = make_settings(env="production", database_url=database_url, valkey_url=valkey_url)
    response = await _get(settings, "/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_metrics_endpoint_in_production_requires_the_bearer_token(make_settings, database_url, valkey_url):
    settings = make_settings(
        env="production", database_url=database_url, valkey_url=valkey_url, metrics_token="scrape-token-123"
    )
    assert (await _get(settings, "/metrics")).status_code == 401
    assert (await _get(settings, "/metrics", {"Authorization": "Bearer wrong"})).status_code == 401
    ok = await _get(settings, "/metrics", {"Authorization": "Bearer scrape-token-123"})
    assert ok.status_code == 200
    assert "sage_requests" in families(ok.text)


async def test_metrics_endpoint_can_be_switched_off(make_settings, database_url, valkey_url):
    settings = make_settings(database_url=database_url, valkey_url=valkey_url, metrics_prometheus=False)
    assert (await _get(settings, "/metrics")).status_code == 404
