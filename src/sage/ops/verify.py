"""`sage db verify-backup`: prove a backup restores, and time it.

A backup nobody has restored is a hope, not a backup. This restores one (the latest by
default) into a scratch database on the same server, compares the per-table row counts
with those recorded in the dump's own snapshot, checks the Alembic revision, and
reports how long download + restore took: the real RTO of a logical restore. The
scratch database is always dropped.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sage.ops.catalog import Catalog, Manifest
from sage.ops.common import OpsError, alert_failure, human_bytes, utcnow
from sage.ops.context import OpsContext
from sage.ops.pgtools import MAINTENANCE_DATABASE, connect, describe, drop_database, quote_ident, with_database
from sage.ops.restore import compare_with_manifest, default_jobs, derived_name, fetch_verified, inspect_database
from sage.ops.restore import restore_into as _restore_into
from sage.ops.schema import MIGRATIONS_DIR


@dataclass
class VerifyReport:
    manifest: Manifest
    scratch: str
    download_seconds: float
    restore_seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    revision: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rto_seconds(self) -> float:
        return self.download_seconds + self.restore_seconds


async def run_verify(
    ctx: OpsContext, ref: str = "latest", *, jobs: int | None = None, script_location: Path | None = None
) -> VerifyReport:
    """Restore-test a backup. Mismatches are in the report; unusable backups raise OpsError."""
    try:
        report = await _verify(ctx, ref, jobs or default_jobs(), script_location)
    except OpsError as exc:
        await _failed(ctx, str(exc))
        raise
    ctx.metrics.observe("BackupRestoreDuration", report.rto_seconds * 1000)
    if report.ok:
        ctx.metrics.incr("BackupVerifySuccess")
    else:
        await _failed(ctx, f"{report.manifest.key} does not match its manifest: {'; '.join(report.problems[:5])}")
    return report


async def _failed(ctx: OpsContext, message: str) -> None:
    ctx.metrics.incr("BackupVerifyFailure")
    ctx.log(f"verify-backup FAILED: {message}")
    await alert_failure(
        ctx.settings,
        ctx.metrics,
        title="Backup verification failed",
        message=message,
        fields={"database": describe(ctx.database_url), "target": ctx.storage.url},
    )


async def _verify(ctx: OpsContext, ref: str, jobs: int, script_location: Path | None) -> VerifyReport:
    log = ctx.log
    manifest = await asyncio.to_thread(Catalog(ctx.storage).resolve, ref)
    scratch = derived_name("sage_verify", f"{utcnow():%Y%m%d%H%M%S}")
    log(f"verifying {manifest.key} (taken {manifest.finished_at}) in scratch database {scratch}")
    admin = await connect(
        with_database(ctx.database_url, MAINTENANCE_DATABASE), timeout=ctx.connect_timeout, application="sage-verify"
    )
    try:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="sage-verify-") as workdir:
            path = await fetch_verified(ctx, manifest, Path(workdir))
            downloaded = time.monotonic()
            await admin.execute(f"CREATE DATABASE {quote_ident(scratch)} TEMPLATE template0")
            try:
                await _restore_into(ctx, path, manifest, scratch, jobs=jobs)
                restored = time.monotonic()
                counts, revision = await inspect_database(ctx, scratch)
            finally:
                await drop_database(admin, scratch)
                log(f"dropped scratch database {scratch}")
    finally:
        await admin.close()
    report = VerifyReport(
        manifest=manifest,
        scratch=scratch,
        download_seconds=downloaded - started,
        restore_seconds=restored - downloaded,
        counts=counts,
        revision=revision,
        problems=compare_with_manifest(manifest, counts, revision),
    )
    if revision is not None and not _known_revision(revision, script_location):
        report.notes.append(
            f"revision {revision} is not in this Sage's migrations: restoring it needs the Sage release that wrote it"
        )
    for table in sorted(counts):
        expected = manifest.row_counts.get(table)
        mark = "ok" if expected == counts[table] else f"MISMATCH (manifest {expected})"
        log(f"  {table}: {counts[table]} rows {mark}")
    log(
        f"revision {revision or 'none'} ({'ok' if revision == manifest.alembic_revision else 'MISMATCH'}); "
        f"restore time (RTO): {report.rto_seconds:.1f} s = download {report.download_seconds:.1f} s "
        f"+ restore {report.restore_seconds:.1f} s for {human_bytes(manifest.database_size_bytes)} of database"
    )
    for note in report.notes:
        log(f"note: {note}")
    log(f"verify-backup {'passed' if report.ok else 'FAILED'}: {manifest.key}")
    return report


def _known_revision(revision: str, script_location: Path | None) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from sage.ops.schema import alembic_config

    script = ScriptDirectory.from_config(
        alembic_config("postgresql://", script_location=script_location or MIGRATIONS_DIR)
    )
    try:
        return all(script.get_revision(rev) is not None for rev in revision.split(","))
    except CommandError:
        return False
