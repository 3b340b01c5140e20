"""Backups restore into the server they came from, whatever its major version.

Against the wheel's PostgreSQL 18 and the distribution's PostgreSQL 15 (Debian's server
binaries in /usr/lib/postgresql/15/bin, a throwaway cluster of the test's own): backup,
restore, verify-backup, and identical content afterwards. With only newer tools on hand
a PostgreSQL 15 backup used to succeed and then never restore (`unrecognized
configuration parameter "transaction_timeout"`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from sage.ops import schema
from sage.ops.backup import BackupOptions, run_backup
from sage.ops.common import OpsError
from sage.ops.pgtools import with_database
from sage.ops.restore import run_restore
from sage.ops.verify import run_verify
from sage.store.embedded_pg import embedded_bin_dir
from tests.ops.conftest import drop_derived, fingerprint, make_ctx, seed, server_major_of
from tests.support.servers import PostgresProcess

DEBIAN_PG15 = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def pg15_server_url() -> Iterator[str]:
    if not (DEBIAN_PG15 / "initdb").exists():
        pytest.fail(
            f"PostgreSQL 15 server binaries not found in {DEBIAN_PG15}: apt-get install postgresql-15", pytrace=False
        )
    server = PostgresProcess(bin_dir=DEBIAN_PG15)
    server.start()
    try:
        yield server.url
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def pg18_server_url(pg_server_url: str) -> Iterator[str]:
    """The wheel's PostgreSQL 18: the session's server when that is it (the default), else a
    throwaway one, so a DATABASE_URL naming another major still tests 18 here."""
    if server_major_of(pg_server_url) == 18:
        yield pg_server_url
        return
    server = PostgresProcess()
    server.start()
    try:
        yield server.url
    finally:
        server.destroy()


@pytest.fixture(params=[18, 15], ids=["postgres18-wheel", "postgres15-debian"])
def server(request: pytest.FixtureRequest) -> tuple[int, str]:
    url = request.getfixturevalue("pg18_server_url" if request.param == 18 else "pg15_server_url")
    return request.param, url


@pytest.fixture
async def migrated_database(server: tuple[int, str]) -> AsyncIterator[str]:
    _, server_url = server
    name = f"sage_majors_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    await schema.upgrade(url)
    yield url
    await drop_derived(server_url, name)
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.parametrize("fmt", ["plain", "custom"])
async def test_backup_then_restore_and_verify_give_identical_content_on_the_servers_major(
    server, migrated_database, ops_settings, fmt
):
    major, _ = server
    await seed(migrated_database, users=50)
    before = await fingerprint(migrated_database)
    settings = ops_settings(migrated_database)

    backup = await run_backup(make_ctx(settings), BackupOptions(fmt=fmt))
    conn = await asyncpg.connect(migrated_database)
    await conn.execute("DELETE FROM users; UPDATE ops_samples SET note = 'changed'")
    await conn.close()
    await run_restore(make_ctx(settings), backup.manifest.key)
    report = await run_verify(make_ctx(settings), backup.manifest.key)

    assert backup.manifest.pg_dump_major == major  # tools of the server's own major were chosen
    assert await fingerprint(migrated_database) == before
    assert report.problems == []


async def test_a_sql_backup_from_newer_tools_is_refused_by_an_older_server_with_one_clear_line(
    pg15_server_url, ops_settings, tmp_path
):
    name = f"sage_majors_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(with_database(pg15_server_url, "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = with_database(pg15_server_url, name)
    try:
        await schema.upgrade(url)
        backups = (tmp_path / "b").as_uri()
        # an operator pinning the PostgreSQL 18 tools (SAGE_PG_BIN_DIR) against a 15 server
        newer = ops_settings(url, backups, pg_bin_dir=embedded_bin_dir())
        backup = await run_backup(make_ctx(newer))

        with pytest.raises(OpsError) as refused:
            await run_verify(make_ctx(ops_settings(url, backups)), backup.manifest.key)
    finally:
        await drop_derived(pg15_server_url, name)
        admin = await asyncpg.connect(with_database(pg15_server_url, "postgres"))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    assert backup.manifest.pg_dump_major == 18
    assert str(refused.value) == (
        f"{backup.manifest.key} is SQL written by pg_dump 18, which PostgreSQL 15 cannot run; "
        "restore it into PostgreSQL 18 or later (backups taken now use tools matching the server)"
    )
