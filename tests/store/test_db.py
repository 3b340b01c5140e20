"""The per-process pool is bounded, and every statement has a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from sage.app import create_app
from sage.settings import Settings
from sage.store.db import Database, asyncpg_url, create_engine, libpq_url


async def _connections(url: str, application: str = "sage") -> int:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
                application,
            )
        )
    finally:
        await conn.close()


async def test_a_process_never_opens_more_than_pool_size_plus_overflow(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = make_settings(db_pool_size=2, db_max_overflow=1, db_pool_timeout_seconds=5)
    db = Database(create_engine(settings, database_url))
    peak = 0

    async def hold() -> None:
        nonlocal peak
        async with db.session() as session:
            await session.execute(text("SELECT pg_sleep(0.2)"))
            peak = max(peak, await _connections(database_url))

    await asyncio.gather(*(hold() for _ in range(12)))
    await db.dispose()
    assert peak == 3


async def test_waiting_longer_than_the_pool_timeout_fails_fast(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = make_settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.2)
    db = Database(create_engine(settings, database_url))
    async with db.session() as holder:
        await holder.execute(text("SELECT 1"))
        with pytest.raises(PoolTimeout):
            async with db.session() as waiter:
                await waiter.execute(text("SELECT 1"))
    await db.dispose()


async def test_statements_past_the_timeout_are_cancelled_by_postgres(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = make_settings(db_statement_timeout_ms=100)
    db = Database(create_engine(settings, database_url))
    async with db.session() as session:
        with pytest.raises(DBAPIError, match="statement timeout"):
            await session.execute(text("SELECT pg_sleep(2)"))
    await db.dispose()


async def test_pool_exhaustion_answers_503_with_retry_after(
    make_settings: Callable[..., Settings], database_url: str, valkey_url: str
) -> None:
    settings = make_settings(
        database_url=database_url, valkey_url=valkey_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.2
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        runtime = app.state.runtime
        async with (
            runtime.db.session() as holder,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
        ):
            await holder.execute(text("SELECT 1"))  # the only connection is busy
            response = await client.post(
                "/api/v1/auth/register", json={"email": "p@example.com", "password": "password1"}
            )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "database_unavailable"


def test_urls_convert_between_libpq_and_asyncpg_forms() -> None:
    assert asyncpg_url("postgres://u:p@h:5432/d?sslmode=require") == "postgresql+asyncpg://u:p@h:5432/d?ssl=require"
    assert libpq_url("postgresql+asyncpg://u@h/d?ssl=require") == "postgresql://u@h/d?sslmode=require"


def test_a_non_postgres_url_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mysql"):
        asyncpg_url("mysql://u@h/d")


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error(
    make_settings: Callable[..., Settings], database_url: str, valkey_url: str
) -> None:
    # pool_pre_ping is off: a pooled connection the server killed must not fail requests.
    settings = make_settings(database_url=database_url, valkey_url=valkey_url, db_pool_size=1, db_max_overflow=0)
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            creds = {"email": "dead@example.com", "password": "password1"}
            assert (await client.post("/api/v1/auth/register", json=creds)).status_code == 201
            token = (await client.post("/api/v1/auth/login", json=creds)).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200
            admin = await asyncpg.connect(libpq_url(database_url))
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'sage'"
                )
            finally:
                await admin.close()
            assert killed >= 1
            async with app.state.runtime.db.engine.connect() as pooled:  # the pool's only connection
                driver = (await pooled.get_raw_connection()).driver_connection
            # Wait (bounded) until asyncpg has read the server's goodbye on the pooled socket.
            for _ in range(200):
                if driver.is_closed():
                    break
                await asyncio.sleep(0.01)
            responses = [await client.get("/api/v1/users/me", headers=auth) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
