"""`sage db migrate`: never two at once, never a half-migrated database, never a traceback."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from sage.observability.metrics import Metrics
from sage.ops import schema
from sage.ops.catalog import Catalog
from sage.ops.common import OpsError
from sage.ops.migrate import MigrateOptions, run_migrate
from sage.ops.pgtools import advisory_key, alembic_revision, database_name, with_database
from sage.ops.storage import open_storage
from tests.ops.conftest import (
    BROKEN_SCRIPTS,
    GATED_SCRIPTS,
    database_names,
    fingerprint,
    make_ctx,
    run_sage,
    schema_dump,
    spawn_sage,
)
from tests.support.servers import PostgresProcess

GATE = 7_000_001  # the advisory lock tests/ops/scripts_gated/versions/g001_gated.py waits for


async def ledger_at(url: str, revision: str) -> None:
    """The broken script directory's schema at `revision`, with rows that predate the migration."""
    await asyncio.to_thread(schema.upgrade_sync, url, revision, script_location=BROKEN_SCRIPTS)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO ledger (memo, amount) SELECT 'entry ' || (g % 40), g * 1.5 FROM generate_series(1, 300) g"
        )
    finally:
        await conn.close()


async def revision_of(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        return await alembic_revision(conn)
    finally:
        await conn.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, process: subprocess.Popen[str], limit: float = 60.0
) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            raise AssertionError(f"never happened: {what}; the task said:\n{err}")
        await asyncio.sleep(0.1)


async def waiting_for_advisory_lock(server_url: str, key: int) -> bool:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
                (key >> 32) & 0xFFFFFFFF,
                key & 0xFFFFFFFF,
            )
        )
    finally:
        await conn.close()


async def test_a_migration_failing_half_way_leaves_schema_and_data_exactly_as_before(empty_database, ops_settings):
    await ledger_at(empty_database, "t002_ledger_note")
    schema_before = schema_dump(empty_database)
    # Sequence positions are left out: PostgreSQL never rolls back nextval(), so the failed
    # revision's inserts leave a gap in ledger ids. A gap is not data.
    data_before = await fingerprint(empty_database, sequences=False)
    metrics = Metrics()

    with pytest.raises(OpsError) as failure:
        await run_migrate(
            make_ctx(ops_settings(empty_database), metrics), MigrateOptions(script_location=BROKEN_SCRIPTS)
        )

    assert "migration failed at t003_broken" in str(failure.value)
    assert "back at t002_ledger_note" in str(failure.value)
    assert "uq_ledger_memo" in str(failure.value) or "UniqueViolation" in str(failure.value)
    assert schema_dump(empty_database) == schema_before
    assert await fingerprint(empty_database, sequences=False) == data_before
    assert metrics.value("MigrationFailure") == 1


async def test_when_an_earlier_revision_had_committed_the_backup_is_restored_automatically(
    empty_database, ops_settings, pg_server_url
):
    await ledger_at(empty_database, "t001_ledger")
    schema_before = schema_dump(empty_database)
    data_before = await fingerprint(empty_database)

    with pytest.raises(OpsError) as failure:
        await run_migrate(make_ctx(ops_settings(empty_database)), MigrateOptions(script_location=BROKEN_SCRIPTS))

    message = str(failure.value)
    assert "revisions up to t002_ledger_note had committed" in message
    assert "back at t001_ledger" in message
    assert await revision_of(empty_database) == "t001_ledger"
    assert schema_dump(empty_database) == schema_before
    assert await fingerprint(empty_database) == data_before
    kept = f"{database_name(empty_database)}_failed_migration_"
    assert any(name.startswith(kept) for name in await database_names(pg_server_url))


async def test_migrate_records_the_revision_in_a_backup_taken_before_upgrading(ops_database, ops_settings):
    await asyncio.to_thread(schema.downgrade_sync, ops_database, "0001_users")
    settings = ops_settings(ops_database)

    result = await run_migrate(make_ctx(settings))

    assert result.before == "0001_users"
    assert result.after == schema.head_revision()
    manifest = Catalog(open_storage(settings.backup_url)).resolve("latest")
    assert manifest.key == result.backup_key
    assert manifest.alembic_revision == "0001_users"


async def test_migrate_at_head_does_nothing_and_takes_no_backup(ops_database, ops_settings):
    settings = ops_settings(ops_database)

    result = await run_migrate(make_ctx(settings))

    assert not result.changed
    assert Catalog(open_storage(settings.backup_url)).good() == []


async def test_a_second_concurrent_migration_waits_for_the_lock(empty_database, pg_server_url, tmp_path):
    env = {
        "DATABASE_URL": empty_database,
        "SAGE_BACKUP_URL": (tmp_path / "backups").as_uri(),
        "SAGE_DATA_DIR": str(tmp_path),
    }
    gate = await asyncpg.connect(empty_database)
    await gate.execute(f"SELECT pg_advisory_lock({GATE})")
    first = spawn_sage("db", "migrate", "--lock-timeout", "120s", env=env, scripts=GATED_SCRIPTS)
    second = None
    try:
        # The first task is inside its migration (holding the migration lock) ...
        await eventually(
            lambda: waiting_for_advisory_lock(pg_server_url, GATE), "first migration at the gate", process=first
        )
        second = spawn_sage("db", "migrate", "--lock-wait", "120", env=env, scripts=GATED_SCRIPTS)
        # ... and the second one queues on that lock instead of migrating too.
        migrate_lock = advisory_key("migrate", database_name(empty_database))
        await eventually(
            lambda: waiting_for_advisory_lock(pg_server_url, migrate_lock), "second migration waiting", process=second
        )
        both_running = first.poll() is None and second.poll() is None
    finally:
        await gate.close()  # opens the gate
    _, first_err = await asyncio.to_thread(first.communicate, timeout=120)
    assert second is not None
    _, second_err = await asyncio.to_thread(second.communicate, timeout=120)

    assert both_running
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert "another migration holds the lock" in second_err
    assert "already at g001_gated; nothing to migrate" in second_err
    conn = await asyncpg.connect(empty_database)
    assert await conn.fetchval("SELECT count(*) FROM gated") == 1
    await conn.close()


async def test_a_migration_gives_up_waiting_for_the_lock_with_a_clear_message(empty_database, pg_server_url, tmp_path):
    holder = await asyncpg.connect(
        with_database(pg_server_url, "postgres"), server_settings={"application_name": "other-task"}
    )
    await holder.execute("SELECT pg_advisory_lock($1)", advisory_key("migrate", database_name(empty_database)))
    try:
        done = await asyncio.to_thread(
            run_sage,
            "db",
            "migrate",
            "--lock-wait",
            "1",
            env={"DATABASE_URL": empty_database, "SAGE_BACKUP_URL": (tmp_path / "b").as_uri()},
        )
    finally:
        await holder.close()

    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("sage: gave up after 1 s waiting for the migration lock")
    assert "other-task" in last
    assert await revision_of(empty_database) is None


@pytest.mark.parametrize("command", ["migrate", "backup"])
async def test_with_the_database_down_the_command_prints_one_clear_line_and_exits_1(command, tmp_path):
    server = PostgresProcess()
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(server.stop)
    try:
        done = await asyncio.to_thread(
            run_sage,
            "db",
            command,
            env={
                "DATABASE_URL": f"postgresql://sage:s3cret-pass@127.0.0.1:{server.port}/sage",
                "SAGE_BACKUP_URL": (tmp_path / "b").as_uri(),
            },
        )
    finally:
        await asyncio.to_thread(server.destroy)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "s3cret-pass" not in done.stderr + done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        f"sage: cannot reach the database at 127.0.0.1:{server.port}/sage (ConnectionRefusedError)"
    )
    assert not (tmp_path / "b").exists()


async def test_dry_run_prints_the_sql_and_changes_nothing(empty_database, tmp_path):
    done = await asyncio.to_thread(
        run_sage,
        "db",
        "migrate",
        "--dry-run",
        env={"DATABASE_URL": empty_database, "SAGE_BACKUP_URL": (tmp_path / "b").as_uri()},
        scripts=BROKEN_SCRIPTS,
    )

    assert done.returncode == 0, done.stderr
    assert "CREATE TABLE ledger" in done.stdout
    assert "ALTER TABLE ledger ADD CONSTRAINT uq_ledger_memo UNIQUE (memo)" in done.stdout
    assert await revision_of(empty_database) is None
    assert not (tmp_path / "b").exists()


async def test_every_step_is_logged_with_a_timestamp(ops_database, tmp_path):
    await asyncio.to_thread(schema.downgrade_sync, ops_database, "0001_users")

    done = await asyncio.to_thread(
        run_sage, "db", "migrate", env={"DATABASE_URL": ops_database, "SAGE_BACKUP_URL": (tmp_path / "b").as_uri()}
    )

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert all(line.startswith("[20") and "Z] " in line[:24] for line in lines), lines
    for step in ("checking connectivity", "migration lock taken", "recorded revision", "backup complete", "applying"):
        assert any(step in line for line in lines), step


@pytest.mark.parametrize("option", ["--lock-timeout", "--statement-timeout"])
async def test_timeouts_must_be_postgresql_durations(option, ops_database, tmp_path):
    done = await asyncio.to_thread(
        run_sage,
        "db",
        "migrate",
        option,
        "5s'; DROP TABLE users; --",
        env={"DATABASE_URL": ops_database, "SAGE_BACKUP_URL": (tmp_path / "b").as_uri()},
    )

    assert done.returncode == 2
    assert f"sage: {option} must be a PostgreSQL duration" in done.stderr
