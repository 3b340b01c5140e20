"""PostgreSQL plumbing for the ops commands: connections, client tools, locks, table counts.

Passwords never reach a command line (where `ps` shows them) or a message: client tools
get the URL without its password and the password through PGPASSWORD.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import asyncpg

from sage.ops.common import OpsError
from sage.store.db import libpq_url
from sage.store.embedded_pg import find_pg_tool

MAINTENANCE_DATABASE = "postgres"
# PostgreSQL truncates identifiers at 63 bytes; names we derive must stay under it.
MAX_IDENTIFIER = 63


def database_name(url: str) -> str:
    name = unquote(urlsplit(libpq_url(url)).path.lstrip("/"))
    if not name:
        raise OpsError("DATABASE_URL names no database (expected postgresql://.../DBNAME)", 2)
    return name


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(libpq_url(url))
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def describe(url: str) -> str:
    """host:port/dbname for messages: never the user or password."""
    parts = urlsplit(libpq_url(url))
    host = parts.hostname or dict(parse_qsl(parts.query)).get("host", "local socket")
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}/{database_name(url)}"


def client_env(url: str, application: str) -> tuple[str, dict[str, str]]:
    """(URL without password, environment with PGPASSWORD) for pg_dump / psql / pg_restore."""
    parts = urlsplit(libpq_url(url))
    env = dict(os.environ)
    env["PGAPPNAME"] = application
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    netloc = parts.netloc
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), env


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def connect(url: str, *, timeout: float = 10.0, application: str = "sage-ops") -> asyncpg.Connection:
    """A connection, or an OpsError naming the server (and never the password)."""
    try:
        return await asyncpg.connect(libpq_url(url), timeout=timeout, server_settings={"application_name": application})
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = type(exc).__name__
        if isinstance(exc, asyncpg.PostgresError):
            reason = one_line_error(exc)
        raise OpsError(f"cannot reach the database at {describe(url)} ({reason})") from None


def one_line_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


async def server_major(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SHOW server_version_num")) // 10000


async def server_version(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SHOW server_version")).split()[0]


# --- client tools ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PgTools:
    """pg_dump / pg_restore / psql: from SAGE_PG_BIN_DIR, else the wheel's PostgreSQL 18, else PATH."""

    bin_dir: Path | None = None

    def path(self, name: str) -> str:
        if self.bin_dir is not None:
            candidate = self.bin_dir / name
            if candidate.exists():
                return str(candidate)
            raise OpsError(f"{name} not found in SAGE_PG_BIN_DIR ({self.bin_dir})", 2)
        with warnings.catch_warnings():
            # Importing the pgserver wheel warns about XDG_RUNTIME_DIR in containers; noise in an ops log.
            warnings.simplefilter("ignore")
            found = find_pg_tool(name)
        if found is None:
            raise OpsError(f"{name} not found: install the PostgreSQL client tools or set SAGE_PG_BIN_DIR", 2)
        return found

    def major(self, name: str) -> int:
        tool = self.path(name)
        try:
            out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
            # "pg_dump (PostgreSQL) 18.4" or "... 18devel" / "... 18beta1"
            match = re.search(r"(\d+)(?:\.\d+|devel|beta\d*|rc\d*)?\s*$", out.strip())
            if match is None:
                raise ValueError(out)
            return int(match.group(1))
        except (OSError, ValueError, subprocess.SubprocessError):
            raise OpsError(f"cannot tell the version of {tool}") from None

    def require(self, name: str, at_least: int, what: str) -> str:
        """The tool's path, or an OpsError naming both versions when it is too old."""
        major = self.major(name)
        if major < at_least:
            raise OpsError(
                f"{name} {major} ({self.path(name)}) is older than {what} {at_least}; "
                f"install the PostgreSQL {at_least} client tools or point SAGE_PG_BIN_DIR at them",
                2,
            )
        return self.path(name)


# --- locks -------------------------------------------------------------------------------------


def advisory_key(purpose: str, database: str) -> int:
    """A stable signed 64-bit advisory-lock key for (purpose, database)."""
    digest = hashlib.sha256(f"sage:{purpose}:{database}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_holder(conn: asyncpg.Connection, key: int) -> str:
    """Who holds an advisory lock, for the waiting message."""
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    row = await conn.fetchrow(
        """
        SELECT a.pid, a.application_name, a.client_addr::text AS addr, a.backend_start
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid
          AND l.objid = $2::bigint::oid AND l.objsubid = 1
        """,
        classid,
        objid,
    )
    if row is None:
        return "another session"
    where = f" from {row['addr']}" if row["addr"] else ""
    return (
        f"pid {row['pid']} ({row['application_name'] or 'unnamed'}{where}, connected {row['backend_start']:%H:%M:%S}Z)"
    )


async def acquire_advisory_lock(
    conn: asyncpg.Connection, key: int, *, wait_seconds: float, on_wait: Callable[[str], None] | None = None
) -> str | None:
    """Take a session advisory lock, waiting up to `wait_seconds`.

    Returns None when taken at once, else the holder we waited for (for the log). The
    wait is PostgreSQL's own (lock_timeout applies to advisory locks), so waiters queue
    in order and show up in pg_locks as not granted. Raises TimeoutError when the wait
    runs out.
    """
    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        return None
    holder = await lock_holder(conn, key)
    if wait_seconds <= 0:
        raise TimeoutError(holder)
    if on_wait is not None:
        on_wait(holder)
    await conn.execute(f"SET lock_timeout = '{int(wait_seconds * 1000)}ms'")
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", key)
    except asyncpg.LockNotAvailableError:
        raise TimeoutError(holder) from None
    finally:
        await conn.execute("RESET lock_timeout")
    return holder


# --- content -----------------------------------------------------------------------------------

TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


async def table_row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Exact per-table row counts ("schema.table" -> rows) as the connection's snapshot sees them."""
    counts: dict[str, int] = {}
    for row in await conn.fetch(TABLES_SQL):
        qualified = f"{quote_ident(row['schema'])}.{quote_ident(row['name'])}"
        counts[f"{row['schema']}.{row['name']}"] = int(await conn.fetchval(f"SELECT count(*) FROM {qualified}"))
    return counts


async def alembic_revision(conn: asyncpg.Connection) -> str | None:
    if await conn.fetchval("SELECT to_regclass('public.alembic_version')") is None:
        return None
    rows = await conn.fetch("SELECT version_num FROM public.alembic_version ORDER BY 1")
    return ",".join(r["version_num"] for r in rows) or None


async def database_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))


async def sessions_on(conn: asyncpg.Connection, name: str) -> list[str]:
    """Other sessions connected to a database, described for the refusal message."""
    rows = await conn.fetch(
        # Client sessions only: autovacuum workers also show up here, and PostgreSQL stops
        # those itself when a database is renamed or dropped.
        "SELECT pid, application_name, usename FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY pid",
        name,
    )
    return [f"pid {r['pid']} ({r['application_name'] or r['usename'] or 'unnamed'})" for r in rows]


async def drop_database(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
