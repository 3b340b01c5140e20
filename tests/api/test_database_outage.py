"""A database that is stopping, stopped or unreachable is a 503 with Retry-After, never a 500:
nothing is wrong with the request, and the client (or the load balancer) should retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.ops import schema
from sage.settings import Settings
from tests.conftest import register_and_login
from tests.support.servers import PostgresProcess

pytestmark = pytest.mark.slow


@pytest.fixture
async def own_postgres() -> AsyncIterator[PostgresProcess]:
    server = PostgresProcess()
    server.start()
    try:
        await schema.upgrade(server.url)
        yield server
    finally:
        server.destroy()


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            yield client


def _assert_retryable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "database_unavailable"
    assert "127.0.0.1" not in response.text and "postgres" not in response.text.lower()


async def test_a_stopped_database_is_a_503_with_retry_after(
    own_postgres: PostgresProcess, make_settings: Callable[..., Settings], valkey_url: str
) -> None:
    settings = make_settings(database_url=own_postgres.url, valkey_url=valkey_url, db_connect_timeout_seconds=2)
    async for client in _client(settings):
        tokens = await register_and_login(client)
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
        own_postgres.stop("fast")  # pooled connections are cut, new ones refused
        _assert_retryable(await client.get("/api/v1/users/me", headers=headers))
        _assert_retryable(
            await client.post(
                "/api/v1/auth/login", json={"email": tokens["email"], "password": "correct horse battery"}
            )
        )


async def test_a_database_shutting_down_is_a_503_not_a_500(
    own_postgres: PostgresProcess, make_settings: Callable[..., Settings], valkey_url: str
) -> None:
    held = await asyncpg.connect(own_postgres.url)  # keeps the smart shutdown in its "shutting down" state
    try:
        own_postgres.begin_smart_shutdown()
        await _until_refused_with_57p03(own_postgres.url)
        settings = make_settings(database_url=own_postgres.url, valkey_url=valkey_url)
        async for client in _client(settings):
            _assert_retryable(
                await client.post(
                    "/api/v1/auth/register", json={"email": "late@example.com", "password": "correct horse battery"}
                )
            )
    finally:
        await held.close()


async def _until_refused_with_57p03(url: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                conn: Any = await asyncpg.connect(url)
            except asyncpg.CannotConnectNowError:
                return
            await conn.close()
            await asyncio.sleep(0.05)


async def test_a_dependency_timing_out_is_a_503_not_a_500(app_client: httpx.AsyncClient) -> None:
    async def connect_times_out() -> None:
        raise TimeoutError  # what asyncpg raises, unwrapped, when a connection attempt times out

    app_client.app.router.add_api_route("/slow-dependency", connect_times_out)  # type: ignore[attr-defined]
    response = await app_client.get("/slow-dependency")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "unavailable"
