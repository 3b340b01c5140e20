"""/health never touches dependencies; /health/ready reports each one and recovers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.observability.metrics import Metrics
from sage.ops import schema
from sage.settings import Settings
from tests.support.servers import PostgresProcess, ValkeyProcess


@pytest.fixture
async def own_servers() -> AsyncIterator[tuple[PostgresProcess, ValkeyProcess]]:
    pg = PostgresProcess()
    pg.start()
    valkey = ValkeyProcess()
    valkey.start()
    await schema.upgrade(pg.url)
    yield pg, valkey
    pg.destroy()
    valkey.destroy()


@pytest.fixture
async def client_on_own_servers(
    own_servers: tuple[PostgresProcess, ValkeyProcess], make_settings: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    pg, valkey = own_servers
    settings = make_settings(database_url=pg.url, valkey_url=valkey.url, db_connect_timeout_seconds=1)
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        yield client


async def _ready(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/health/ready")


async def test_ready_reports_each_dependency_with_its_latency(client_on_own_servers: httpx.AsyncClient) -> None:
    response = await _ready(client_on_own_servers)
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["postgres"]["status"] == "ok" and checks["valkey"]["status"] == "ok"
    assert checks["postgres"]["latency_ms"] >= 0


async def test_postgres_outage_fails_ready_but_not_health_and_recovers(
    own_servers: tuple[PostgresProcess, ValkeyProcess], client_on_own_servers: httpx.AsyncClient
) -> None:
    pg, _ = own_servers
    pg.stop()
    down = await _ready(client_on_own_servers)
    assert down.status_code == 503
    assert down.json()["checks"]["postgres"]["status"] == "down"
    assert down.json()["checks"]["valkey"]["status"] == "ok"
    assert (await client_on_own_servers.get("/health")).status_code == 200
    pg.start()
    assert (await _eventually_ready(client_on_own_servers)).status_code == 200


async def test_valkey_outage_fails_ready_but_not_health_and_recovers(
    own_servers: tuple[PostgresProcess, ValkeyProcess], client_on_own_servers: httpx.AsyncClient
) -> None:
    _, valkey = own_servers
    valkey.stop()
    down = await _ready(client_on_own_servers)
    assert down.status_code == 503
    assert down.json()["checks"]["valkey"]["status"] == "down"
    assert (await client_on_own_servers.get("/health")).status_code == 200
    valkey.start()
    assert (await _eventually_ready(client_on_own_servers)).status_code == 200


async def test_login_keeps_working_while_valkey_is_down(
    own_servers: tuple[PostgresProcess, ValkeyProcess], client_on_own_servers: httpx.AsyncClient
) -> None:
    _, valkey = own_servers
    payload = {"email": "during-outage@example.com", "password": "password1"}
    assert (await client_on_own_servers.post("/api/v1/auth/register", json=payload)).status_code == 201
    valkey.stop()
    response = await client_on_own_servers.post("/api/v1/auth/login", json=payload)
    assert response.status_code == 200  # rate limiting fails open; the database is the source of truth


async def _eventually_ready(client: httpx.AsyncClient, attempts: int = 100) -> httpx.Response:
    response = await _ready(client)
    for _ in range(attempts):
        if response.status_code == 200:
            break
        await asyncio.sleep(0.1)
        response = await _ready(client)
    return response


async def test_liveness_answered_ahead_of_the_framework_equals_the_routes_answer(
    app_client: httpx.AsyncClient, metrics: Metrics
) -> None:
    # A plain GET is answered by the request-context middleware; one with a (empty) body goes
    # through the documented route. Both say the same thing and are counted the same way.
    fast = await app_client.get("/health")
    routed = await app_client.request("GET", "/health", content=b"", headers={"Content-Length": "0"})
    for response in (fast, routed):
        assert response.status_code == 200
        assert response.content == b'{"status":"ok"}'
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-length"] == "15"
        assert len(response.headers["x-request-id"]) == 32
        assert response.headers.get_list("vary") == ["Origin"]
    assert fast.headers["x-request-id"] != routed.headers["x-request-id"]
    assert metrics.value("Requests", route="/health") == 2
    assert metrics.value("RequestLatency", route="/health", method="GET") == 2


async def test_liveness_keeps_a_given_request_id(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health", headers={"X-Request-ID": "lb-check-7"})
    assert response.headers["x-request-id"] == "lb-check-7"


async def test_other_methods_on_liveness_still_reach_the_router(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.head("/health")).status_code == 405
