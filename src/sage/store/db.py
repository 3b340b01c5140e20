"""PostgreSQL engine and sessions (SQLAlchemy 2, asyncpg).

The pool is deliberately small. The spec's incident ("53300 too many connections" with
2..10 tasks) came from unbounded per-task connections: at the defaults a task holds at
most pool_size + max_overflow = 7 connections, so 10 API tasks x 1 worker x 7 + ingestor
+ migration stays under db.t3.micro's ~85 usable connections. infra/ checks the same
budget before deploying.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyPoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import greenlet_spawn

from sage.settings import Settings

_DRIVER_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
}


def asyncpg_url(url: str) -> str:
    """Normalise any PostgreSQL URL to SQLAlchemy's asyncpg form.

    libpq's `sslmode` becomes asyncpg's `ssl` (asyncpg rejects `sslmode`).
    """
    parts = urlsplit(url)
    scheme = _DRIVER_SCHEMES.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {parts.scheme}://")
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.append(("ssl", value) if key == "sslmode" else (key, value))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def libpq_url(url: str) -> str:
    """The same database as a plain libpq URL (pg_dump, psql)."""
    parts = urlsplit(url)
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.append(("sslmode", value) if key == "ssl" else (key, value))
    return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), parts.fragment))


def create_engine(settings: Settings, url: str, *, pool_size: int | None = None) -> AsyncEngine:
    server_settings = {"application_name": "sage"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        asyncpg_url(url),
        # The overflow is kept, not churned: QueuePool closes an overflow connection whenever
        # one is returned while `pool_size` sit idle, so under steady concurrency it kept
        # reconnecting (TCP, start-up, server_settings: ~200 µs CPU per request measured on
        # /users/me). Connections are still opened only on demand, the maximum per process is
        # unchanged (size + overflow, the budget above), and pool_recycle retires idle ones.
        pool_size=(pool_size or settings.db_pool_size) + settings.db_max_overflow,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        # No pre-ping: it costs a round trip (and a BEGIN/ROLLBACK) on every checkout to catch a
        # connection that died while idle, which is rare (a database restart or failover). Such a
        # request fails once with asyncpg's ConnectionDoesNotExistError / InterfaceError, which
        # SQLAlchemy reports as a disconnect: the pool then invalidates that connection (and the
        # ones opened before it), the error handlers answer 503 `database_unavailable`, and the
        # next checkout opens a fresh connection. The per-request read (`driver_connection`)
        # goes further: it replaces a connection asyncpg already knows is closed before using
        # it. pool_recycle retires connections before proxy / RDS idle timeouts kill them.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={
            "server_settings": server_settings,
            "timeout": settings.db_connect_timeout_seconds,
            "command_timeout": max(settings.db_statement_timeout_ms / 1000 + 5, 10),
        },
    )


class Database:
    """The engine and the session factory of one process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The asyncpg connection under a pooled one, for a single-statement read on every
        request: the statement is the only round trip (asyncpg runs it outside a transaction;
        a session would add BEGIN and ROLLBACK, statement compilation and ORM identity-map work
        for rows nobody changes). The pool still checks it out, resets and returns it.

        SQLAlchemy does not see errors raised here, so dead connections are handled here: one
        the server closed while it sat in the pool (asyncpg noticed the socket close) is
        replaced before use, at no round trip; one that dies during the statement is
        invalidated, so the pool never hands it out again, and surfaces as ConnectionError
        (the API answers 503 database_unavailable)."""
        for attempt in range(2):
            # The pool's own connection record, without a SQLAlchemy `Connection` around it
            # (its construction and events were a visible share of a request); the pool still
            # resets it on return. Pool calls may connect or close, hence the greenlet.
            pooled = await greenlet_spawn(self.engine.sync_engine.raw_connection)
            try:
                driver: asyncpg.Connection = pooled.driver_connection
                if driver.is_closed() and attempt == 0:
                    await greenlet_spawn(pooled.invalidate)
                    continue
                try:
                    yield driver
                except Exception as exc:
                    if driver.is_closed():
                        await greenlet_spawn(pooled.invalidate, exc)
                        raise ConnectionError("the database connection was lost") from exc
                    raise
                return
            finally:
                await greenlet_spawn(pooled.close)  # back to the pool (a no-op once invalidated)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def pool_status(self) -> tuple[int, int]:
        """(connections checked out, maximum the pool may open)."""
        pool = self.engine.pool
        checked_out = int(getattr(pool, "checkedout", lambda: 0)())
        size = int(getattr(pool, "size", lambda: 0)()) + int(getattr(pool, "_max_overflow", 0))
        return checked_out, size

    async def dispose(self) -> None:
        await self.engine.dispose()


# SQLSTATE classes that say "the connection or the server", not "this statement":
# 08 connection exception, 57P operator intervention (shutting down, starting up), 53 out of resources.
_CONNECTION_SQLSTATES = ("08", "57P", "53")


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` means the database could not be reached or went away mid-statement,
    so the same work may succeed later; False for errors of the statement itself."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError | SQLAlchemyPoolTimeout):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_CONNECTION_SQLSTATES):
            return True
        pending.extend((getattr(current, "orig", None), current.__cause__, current.__context__))
    return False
