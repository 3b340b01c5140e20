"""PostgreSQL plumbing for the ops commands: connections, client tools, locks, table counts.

Passwords never reach a command line (where `ps` shows them) or a message: client tools
get the URL without its password and the password through PGPASSWORD.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import asyncpg

from sage.ops.common import OpsError
from sage.store.db import libpq_url
from sage.store.embedded_pg import embedded_bin_dir

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


# "pg_dump (PostgreSQL) 18.4", "... 18devel", "... 18beta1", "... 9.6.24", and distribution
# builds that append their package version: "... 15.20 (Debian 15.20-0+deb12u1)",
# "... 18.1 (Debian 18.1-1.pgdg13+2)", "... 16.4 (Ubuntu 16.4-1.pgdg22.04+1)".
_TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.\d+)*(?:devel|beta\d*|rc\d*)?(?:\s|$)")
# Debian's and PGDG's packages put each major's tools here, side by side.
DEBIAN_BIN_DIR = "/usr/lib/postgresql/{major}/bin"


def tool_major(version_output: str) -> int | None:
    """The major version in a PostgreSQL tool's `--version` output, or None when it has none."""
    match = _TOOL_VERSION.search(version_output)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class PgTool:
    path: str
    major: int


@dataclass(frozen=True)
class PgTools:
    """pg_dump / pg_restore / psql matched to the server they work on.

    SAGE_PG_BIN_DIR, when set, is the operator's choice and is used as it is. Otherwise the
    tools of the server's own major are preferred (Debian/PGDG's /usr/lib/postgresql/<major>/bin,
    the wheel's PostgreSQL 18, PATH): a newer pg_dump writes settings an older server rejects
    (pg_dump 17+ emits `SET transaction_timeout`), so its dump would not restore into the
    server it came from. Only when no tool of that major exists is the closest newer one used.
    """

    bin_dir: Path | None = None
    debian_bin_dir: str = DEBIAN_BIN_DIR

    def _candidates(self, name: str, server_major: int) -> list[str]:
        if self.bin_dir is not None:
            candidate = self.bin_dir / name
            if not candidate.exists():
                raise OpsError(f"{name} not found in SAGE_PG_BIN_DIR ({self.bin_dir})", 2)
            return [str(candidate)]
        found = [str(Path(self.debian_bin_dir.format(major=server_major)) / name)]
        with warnings.catch_warnings():
            # Importing the pgserver wheel warns about XDG_RUNTIME_DIR in containers; noise in an ops log.
            warnings.simplefilter("ignore")
            bundled = embedded_bin_dir()
        if bundled is not None:
            found.append(str(bundled / name))
        on_path = shutil.which(name)
        if on_path is not None:
            found.append(on_path)
        unique = list(dict.fromkeys(p for p in found if Path(p).is_file() and os.access(p, os.X_OK)))
        if not unique:
            raise OpsError(f"{name} not found: install the PostgreSQL client tools or set SAGE_PG_BIN_DIR", 2)
        return unique

    def major(self, path: str) -> int:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            raise OpsError(f"cannot run {path} --version") from None
        major = tool_major(out)
        if major is None:
            raise OpsError(f"cannot tell the version of {path} from {out.strip()[:80]!r}")
        return major

    def for_server(self, name: str, server_major: int, *, at_least: int | None = None, what: str = "") -> PgTool:
        """The tool to use against a server of `server_major`: that major if available, else
        the closest newer one that is at least `at_least` (default: the server's major)."""
        needed = max(server_major, at_least or server_major)
        tools = [PgTool(path, self.major(path)) for path in self._candidates(name, server_major)]
        usable = [t for t in tools if t.major >= needed]
        exact = [t for t in usable if t.major == server_major]
        if exact:
            return exact[0]
        if usable:
            return min(usable, key=lambda t: t.major)
        newest = max(tools, key=lambda t: t.major)
        reason = what or f"the server's PostgreSQL {server_major}"
        raise OpsError(
            f"{name} {newest.major} ({newest.path}) is older than {reason}; install the PostgreSQL {needed} "
            f"client tools (Debian: apt-get install postgresql-client-{needed}) or point SAGE_PG_BIN_DIR at them",
            2,
        )


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
