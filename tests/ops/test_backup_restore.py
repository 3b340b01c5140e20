"""Backups go to S3 (or a directory) whole and checksummed, and come back identical."""

from __future__ import annotations

import gzip
import hashlib
import json
import stat
from pathlib import Path

import asyncpg
import pytest

from sage.observability.metrics import Metrics
from sage.ops.backup import BackupOptions, run_backup
from sage.ops.catalog import Catalog
from sage.ops.common import OpsError
from sage.ops.pgtools import database_name, with_database
from sage.ops.restore import run_restore
from sage.ops.storage import S3_MAX_PARTS, MiB, choose_part_size, open_storage, part_size_for
from tests.ops.conftest import database_names, fingerprint, make_ctx, seed, server_major_of


async def test_backup_to_s3_then_restore_gives_identical_content(ops_database, ops_settings, s3, pg_server_url):
    await seed(ops_database)
    before = await fingerprint(ops_database)
    settings = ops_settings(ops_database, s3.url)

    backup = await run_backup(make_ctx(settings))
    # The live database changes after the backup; the restore must bring back the backup's state.
    conn = await asyncpg.connect(ops_database)
    await conn.execute(
        "DELETE FROM users; UPDATE ops_samples SET note = 'changed'; SELECT nextval('ops_samples_id_seq')"
    )
    await conn.close()

    result = await run_restore(make_ctx(settings), "latest")

    assert result.manifest.key == backup.manifest.key
    assert await fingerprint(ops_database) == before
    assert result.previous in await database_names(pg_server_url)


async def test_custom_format_backup_restores_in_parallel_with_identical_content(ops_database, ops_settings):
    await seed(ops_database)
    before = await fingerprint(ops_database)
    settings = ops_settings(ops_database)

    backup = await run_backup(make_ctx(settings), BackupOptions(fmt="custom"))
    await run_restore(make_ctx(settings), backup.manifest.key, jobs=2)

    assert backup.manifest.key.endswith(".dump")
    assert await fingerprint(ops_database) == before


async def test_backup_object_is_named_by_time_and_its_manifest_holds_its_sha256(ops_database, ops_settings, s3):
    await seed(ops_database)
    settings = ops_settings(ops_database, s3.url)

    backup = await run_backup(make_ctx(settings))

    key = backup.manifest.key
    assert key.startswith("backup_") and key.endswith(".sql.gz") and len(key) == len("backup_YYYYMMDD_HHMMSS.sql.gz")
    body = s3.client.get_object(Bucket=s3.bucket, Key=s3.key(key))["Body"].read()
    manifest = json.loads(s3.client.get_object(Bucket=s3.bucket, Key=s3.key(key + ".manifest.json"))["Body"].read())
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["size"] == len(body)
    assert b"CREATE TABLE public.users" in gzip.decompress(body)


async def test_manifest_row_counts_are_those_of_the_dumped_snapshot(ops_database, ops_settings):
    await seed(ops_database, users=37)
    settings = ops_settings(ops_database)

    backup = await run_backup(make_ctx(settings))

    counts = backup.manifest.row_counts
    assert counts["public.users"] == 37
    assert counts["public.ops_samples"] == 500 - 500 // 7
    assert backup.manifest.alembic_revision is not None


async def test_large_backup_is_uploaded_in_several_parts_and_reassembles_exactly(ops_database, ops_settings, s3):
    await seed(ops_database, blob_bytes=12 * MiB)
    before = await fingerprint(ops_database)
    settings = ops_settings(ops_database, s3.url)

    backup = await run_backup(make_ctx(settings), BackupOptions(part_size=5 * MiB, compress_level=1))
    head = s3.client.head_object(Bucket=s3.bucket, Key=s3.key(backup.manifest.key))
    await run_restore(make_ctx(settings), "latest")

    assert head["ETag"].strip('"').endswith(tuple(f"-{n}" for n in range(2, 10)))  # a multipart object
    assert await fingerprint(ops_database) == before


def test_part_size_keeps_any_database_under_the_ten_thousand_part_limit():
    for size in (0, 10 * MiB, 50 * 1024 * MiB, 2 * 1024 * 1024 * MiB):
        base = choose_part_size(size)
        assert base >= 5 * MiB
        capacity = sum(part_size_for(n, base) for n in range(1, S3_MAX_PARTS + 1))
        assert capacity >= 4 * size  # room even when the estimate is four times too small


async def test_backup_refuses_a_pg_dump_older_than_the_server_naming_both(ops_database, ops_settings, tmp_path):
    server = server_major_of(ops_database)
    old_tools = tmp_path / "old"
    old_tools.mkdir()
    fake = old_tools / "pg_dump"
    fake.write_text(f'#!/bin/sh\necho "pg_dump (PostgreSQL) {server - 1}.7"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    settings = ops_settings(ops_database, pg_bin_dir=old_tools)

    with pytest.raises(OpsError) as failure:
        await run_backup(make_ctx(settings))

    assert f"pg_dump {server - 1}" in str(failure.value)
    assert f"PostgreSQL {server}" in str(failure.value)
    assert Catalog(open_storage(settings.backup_url)).good() == []


async def test_successful_backup_emits_success_and_duration_metrics(ops_database, ops_settings):
    metrics = Metrics()

    await run_backup(make_ctx(ops_settings(ops_database), metrics))

    assert metrics.value("BackupSuccess") == 1
    assert len(metrics.samples("BackupDuration")) == 1
    assert metrics.value("BackupFailure") == 0


async def test_failed_backup_emits_the_failure_metric(ops_settings, pg_server_url):
    metrics = Metrics()
    missing = with_database(pg_server_url, "sage_no_such_database")

    with pytest.raises(OpsError):
        await run_backup(make_ctx(ops_settings(missing), metrics))

    assert metrics.value("BackupFailure") == 1
    assert metrics.value("BackupSuccess") == 0


async def test_restore_refuses_a_database_in_use_without_force(ops_database, ops_settings):
    await seed(ops_database)
    settings = ops_settings(ops_database)
    await run_backup(make_ctx(settings))
    app_connection = await asyncpg.connect(ops_database)
    await app_connection.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), 'new@x.io', 'h')"
    )
    before = await fingerprint(ops_database)

    try:
        with pytest.raises(OpsError) as refusal:
            await run_restore(make_ctx(settings), "latest")
        still_connected = not app_connection.is_closed() and await app_connection.fetchval("SELECT 1") == 1
    finally:
        await app_connection.close()

    assert "in use" in str(refusal.value) and "--force" in str(refusal.value)
    assert still_connected
    assert await fingerprint(ops_database) == before


async def test_restore_with_force_disconnects_sessions_and_switches(ops_database, ops_settings):
    await seed(ops_database, users=10)
    settings = ops_settings(ops_database)
    await run_backup(make_ctx(settings))
    app_connection = await asyncpg.connect(ops_database)
    await app_connection.execute("DELETE FROM users")

    result = await run_restore(make_ctx(settings), "latest", force=True)

    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await app_connection.fetchval("SELECT 1")
    await app_connection.close()
    conn = await asyncpg.connect(ops_database)
    assert await conn.fetchval("SELECT count(*) FROM users") == 10
    await conn.close()
    assert result.previous is not None


async def test_restore_dry_run_changes_nothing_and_says_what_it_would_do(ops_database, ops_settings, pg_server_url):
    await seed(ops_database)
    settings = ops_settings(ops_database)
    backup = await run_backup(make_ctx(settings))
    conn = await asyncpg.connect(ops_database)
    await conn.execute("DELETE FROM users")
    await conn.close()
    before = await fingerprint(ops_database)
    databases = await database_names(pg_server_url)

    result = await run_restore(make_ctx(settings), "latest", dry_run=True)

    assert result.dry_run
    assert any(backup.manifest.key in line for line in result.plan)
    assert any(f"rename {database_name(ops_database)} ->" in line for line in result.plan)
    assert await fingerprint(ops_database) == before
    assert await database_names(pg_server_url) == databases


async def test_restore_into_a_database_that_no_longer_exists_creates_it(empty_database, ops_settings, pg_server_url):
    conn = await asyncpg.connect(empty_database)
    await conn.execute("CREATE TABLE kept (id int); INSERT INTO kept SELECT generate_series(1, 42)")
    await conn.close()
    settings = ops_settings(empty_database)
    await run_backup(make_ctx(settings))
    admin = await asyncpg.connect(with_database(pg_server_url, "postgres"))
    await admin.execute(f'DROP DATABASE "{database_name(empty_database)}" WITH (FORCE)')
    await admin.close()

    result = await run_restore(make_ctx(settings), "latest")

    conn = await asyncpg.connect(empty_database)
    assert await conn.fetchval("SELECT count(*) FROM kept") == 42
    await conn.close()
    assert result.previous is None


def test_backup_url_must_be_s3_or_file(tmp_path: Path):
    with pytest.raises(OpsError) as failure:
        open_storage("ftp://example.com/backups")
    assert "s3://bucket/prefix or file:///path" in str(failure.value)


async def test_a_failed_backup_is_posted_to_the_discord_errors_channel(ops_settings, pg_server_url):
    from tests.notify.fake_discord import FakeDiscord

    discord = FakeDiscord().start()
    try:
        settings = ops_settings(
            with_database(pg_server_url, "sage_no_such_database"), discord_webhook_errors=discord.url("errors")
        )
        with pytest.raises(OpsError):
            await run_backup(make_ctx(settings))
        embeds = discord.embeds("errors")
    finally:
        discord.stop()

    assert len(embeds) == 1
    assert "Database backup failed" in embeds[0]["title"]
    assert "sage_no_such_database" in json.dumps(embeds[0])
