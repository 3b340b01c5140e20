"""A backup that failed never counts; a damaged one is refused; retention only follows success."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sage.observability.metrics import Metrics
from sage.ops.backup import BackupOptions, run_backup
from sage.ops.catalog import Catalog
from sage.ops.common import OpsError
from sage.ops.restore import run_restore
from sage.ops.storage import MiB, open_storage
from sage.ops.verify import run_verify
from sage.store.embedded_pg import embedded_bin_dir
from tests.ops.conftest import aws_env, database_names, fingerprint, make_ctx, run_sage, seed

T0 = datetime(2026, 1, 1, 3, 0, 0, tzinfo=UTC)


def killed_pg_dump(directory: Path, after_bytes: int) -> Path:
    """A pg_dump that is SIGKILLed after writing `after_bytes` of a real dump."""
    real = embedded_bin_dir() / "pg_dump"  # type: ignore[operator]
    directory.mkdir()
    script = directory / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then exec "{real}" --version; fi\n'
        f'"{real}" "$@" | head -c {after_bytes}\n'
        "kill -KILL $$\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


async def test_pg_dump_killed_mid_way_leaves_nothing_in_s3_that_counts(ops_database, ops_settings, s3, tmp_path):
    await seed(ops_database, blob_bytes=16 * MiB)
    tools = killed_pg_dump(tmp_path / "bin", after_bytes=6 * MiB)  # past the first 5 MiB part
    settings = ops_settings(ops_database, s3.url, pg_bin_dir=tools)
    metrics = Metrics()

    with pytest.raises(OpsError) as failure:
        await run_backup(make_ctx(settings, metrics), BackupOptions(part_size=5 * MiB, compress_level=1))

    assert "killed by signal 9" in str(failure.value)
    assert s3.names() == []
    assert s3.incomplete_uploads() == []  # the multipart upload (one part already sent) was aborted
    assert metrics.value("BackupFailure") == 1


async def test_pg_dump_killed_mid_way_leaves_no_file_behind(ops_database, ops_settings, tmp_path):
    await seed(ops_database, blob_bytes=2 * MiB)
    settings = ops_settings(ops_database, pg_bin_dir=killed_pg_dump(tmp_path / "bin", after_bytes=64 * 1024))

    with pytest.raises(OpsError):
        await run_backup(make_ctx(settings))

    backups = tmp_path / "backups"
    assert sorted(p.name for p in backups.iterdir()) == []


async def test_retention_keeps_the_seven_newest_successful_backups(ops_database, ops_settings, s3):
    settings = ops_settings(ops_database, s3.url)
    keys = []
    for hour in range(9):
        result = await run_backup(make_ctx(settings), BackupOptions(now=T0 + timedelta(hours=hour)))
        keys.append(result.manifest.key)

    good = [entry.key for entry in Catalog(open_storage(s3.url)).good()]

    assert good == list(reversed(keys[2:]))
    assert s3.names() == sorted([s3.key(k) for k in keys[2:]] + [s3.key(k + ".manifest.json") for k in keys[2:]])


async def test_a_failed_backup_deletes_no_older_backup(ops_database, ops_settings, s3, tmp_path):
    settings = ops_settings(ops_database, s3.url)
    for hour in range(7):
        await run_backup(make_ctx(settings), BackupOptions(now=T0 + timedelta(hours=hour)))
    before = s3.names()
    failing = ops_settings(ops_database, s3.url, pg_bin_dir=killed_pg_dump(tmp_path / "bin", after_bytes=1000))

    with pytest.raises(OpsError):
        await run_backup(make_ctx(failing), BackupOptions(now=T0 + timedelta(hours=8)))

    assert s3.names() == before
    assert len(Catalog(open_storage(s3.url)).good()) == 7


async def test_a_corrupted_backup_is_refused_by_its_checksum(ops_database, ops_settings, s3, pg_server_url):
    await seed(ops_database)
    settings = ops_settings(ops_database, s3.url)
    backup = await run_backup(make_ctx(settings))
    key = s3.key(backup.manifest.key)
    body = bytearray(s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01  # one flipped bit, same size
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=bytes(body))
    before = await fingerprint(ops_database)
    databases = await database_names(pg_server_url)

    with pytest.raises(OpsError) as refusal:
        await run_restore(make_ctx(settings), "latest")

    assert "failed its checksum" in str(refusal.value)
    assert await fingerprint(ops_database) == before
    assert await database_names(pg_server_url) == databases


async def test_a_truncated_backup_is_refused(ops_database, ops_settings, s3):
    await seed(ops_database)
    settings = ops_settings(ops_database, s3.url)
    backup = await run_backup(make_ctx(settings))
    key = s3.key(backup.manifest.key)
    body = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=body[: len(body) // 2])
    before = await fingerprint(ops_database)

    with pytest.raises(OpsError) as refusal:
        await run_restore(make_ctx(settings), "latest")

    assert "truncated" in str(refusal.value)
    assert await fingerprint(ops_database) == before


async def test_verify_backup_refuses_a_corrupted_backup(ops_database, ops_settings, s3):
    settings = ops_settings(ops_database, s3.url)
    backup = await run_backup(make_ctx(settings))
    key = s3.key(backup.manifest.key)
    body = bytearray(s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    body[-5] ^= 0xFF
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=bytes(body))
    metrics = Metrics()

    with pytest.raises(OpsError) as refusal:
        await run_verify(make_ctx(settings, metrics))

    assert "failed its checksum" in str(refusal.value)
    assert metrics.value("BackupVerifyFailure") == 1


async def test_cli_restore_of_a_corrupted_backup_exits_non_zero_with_one_line(ops_database, ops_settings, s3, tmp_path):
    settings = ops_settings(ops_database, s3.url)
    backup = await run_backup(make_ctx(settings))
    key = s3.key(backup.manifest.key)
    body = bytearray(s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    body[100] ^= 0x10
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=bytes(body))

    done = await asyncio.to_thread(
        run_sage,
        "db",
        "restore",
        backup.manifest.key,
        env={"DATABASE_URL": ops_database, "SAGE_BACKUP_URL": s3.url, "SAGE_DATA_DIR": str(tmp_path), **aws_env(s3)},
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"sage: {backup.manifest.key} failed its checksum")
