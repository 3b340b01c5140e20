"""`sage db verify-backup` restores for real, compares with the dump's snapshot, and says how long it took."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json

import pytest

from sage.observability.metrics import Metrics
from sage.ops.backup import run_backup
from sage.ops.catalog import manifest_key
from sage.ops.storage import open_storage
from sage.ops.verify import run_verify
from tests.ops.conftest import aws_env, database_names, make_ctx, run_sage, seed


async def test_verify_backup_passes_for_a_good_backup_and_reports_the_restore_time(
    ops_database, ops_settings, pg_server_url
):
    await seed(ops_database, users=25)
    settings = ops_settings(ops_database)
    backup = await run_backup(make_ctx(settings))
    databases = await database_names(pg_server_url)
    metrics = Metrics()

    report = await run_verify(make_ctx(settings, metrics))

    assert report.ok, report.problems
    assert report.manifest.key == backup.manifest.key
    assert report.counts == backup.manifest.row_counts
    assert report.revision == backup.manifest.alembic_revision
    assert report.rto_seconds > 0
    assert metrics.samples("BackupRestoreDuration") == [pytest.approx(report.rto_seconds * 1000)]
    assert metrics.value("BackupVerifySuccess") == 1
    assert await database_names(pg_server_url) == databases  # the scratch database is gone


def plant_lost_row(storage_url: str, key: str) -> None:
    """Rewrite a backup so one users row is missing, with a matching checksum: a dump that
    silently lost data, which only a restore-and-count can catch."""
    storage = open_storage(storage_url)
    sql = gzip.decompress(storage.read_bytes(key)).decode()
    lines = sql.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("COPY public.users "))
    del lines[start + 1]
    body = gzip.compress("\n".join(lines).encode())
    manifest = json.loads(storage.read_bytes(manifest_key(key)))
    manifest.update(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    storage.delete(key)
    storage.put_bytes(key, body)
    storage.put_bytes(manifest_key(key), json.dumps(manifest).encode())


async def test_verify_backup_reports_a_planted_mismatch_and_exits_non_zero(ops_database, ops_settings, s3, tmp_path):
    await seed(ops_database, users=30)
    settings = ops_settings(ops_database, s3.url)
    backup = await run_backup(make_ctx(settings))
    await asyncio.to_thread(plant_lost_row, s3.url, backup.manifest.key)

    done = await asyncio.to_thread(
        run_sage,
        "db",
        "verify-backup",
        env={"DATABASE_URL": ops_database, "SAGE_BACKUP_URL": s3.url, "SAGE_DATA_DIR": str(tmp_path), **aws_env(s3)},
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "public.users: 29 rows MISMATCH (manifest 30)" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"sage: verify-backup: {backup.manifest.key} does not match its manifest: "
        "public.users: 29 rows after restore, manifest says 30"
    )


async def test_verify_backup_reports_a_revision_mismatch(ops_database, ops_settings):
    settings = ops_settings(ops_database)
    backup = await run_backup(make_ctx(settings))
    storage = open_storage(settings.backup_url)
    manifest = json.loads(storage.read_bytes(manifest_key(backup.manifest.key)))
    manifest["alembic_revision"] = "0000_not_this_one"
    storage.put_bytes(manifest_key(backup.manifest.key), json.dumps(manifest).encode())
    metrics = Metrics()

    report = await run_verify(make_ctx(settings, metrics))

    assert not report.ok
    assert any("manifest says 0000_not_this_one" in problem for problem in report.problems)
    assert metrics.value("BackupVerifyFailure") == 1
