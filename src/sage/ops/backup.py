"""`sage db backup`: pg_dump streamed to the backup target, checksummed, with retention.

Unlike the spec's `pg_dump | gzip > file && aws s3 cp` (where a failed pg_dump still
uploads a truncated file and a shell pipe hides the failure), every stage here is
checked and any failure fails the whole: the upload is aborted, no manifest is written,
and nothing that looks like a good backup is left behind. Old backups are deleted only
after a new one is complete.

The dump runs on a snapshot exported from a REPEATABLE READ transaction; the per-table
row counts and the Alembic revision recorded in the manifest are read in that same
transaction, so `sage db verify-backup` compares like with like.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from sage.ops.catalog import Catalog, Manifest, backup_key, manifest_key
from sage.ops.common import (
    EXIT_LOCK_TIMEOUT,
    ByteProgress,
    OpsError,
    alert_failure,
    human_bytes,
    one_line,
    utcnow,
)
from sage.ops.context import OpsContext
from sage.ops.pgtools import (
    acquire_advisory_lock,
    advisory_key,
    alembic_revision,
    client_env,
    connect,
    database_name,
    describe,
    one_line_error,
    server_major,
    server_version,
    table_row_counts,
)
from sage.ops.storage import MiB, Upload, choose_part_size

FORMATS = ("plain", "custom")
CONTENT_TYPES = {"plain": "application/gzip", "custom": "application/octet-stream"}
STALE_UPLOAD_AGE = timedelta(days=1)
PUMP_CHUNK = MiB
# pg_dump waits at most this long for its table locks, so a backup queued behind a
# long ALTER fails instead of making every query queue behind it in turn.
LOCK_WAIT_TIMEOUT = "120s"


@dataclass
class BackupOptions:
    fmt: str = "plain"
    compress_level: int = 6
    part_size: int | None = None  # default: chosen from the database size
    lock_wait_seconds: float = 0.0  # another backup of the same database running: wait this long
    now: datetime | None = None  # the key's timestamp; default: the current time


@dataclass
class BackupResult:
    manifest: Manifest
    deleted: list[str] = field(default_factory=list)


async def run_backup(ctx: OpsContext, options: BackupOptions | None = None) -> BackupResult:
    """Take one backup; on failure emit BackupFailure, alert, and raise OpsError."""
    options = options or BackupOptions()
    if options.fmt not in FORMATS:
        raise OpsError(f"unknown backup format {options.fmt!r} (plain or custom)", 2)
    started = time.monotonic()
    try:
        result = await _backup(ctx, options)
    except OpsError as exc:
        await _report_failure(ctx, str(exc))
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        message = f"backup failed: {one_line_error(exc)}"
        await _report_failure(ctx, message)
        raise OpsError(message) from None
    except Exception as exc:  # boto errors and the unforeseen: still one line and an alert
        message = f"backup failed: {one_line_error(exc)}"
        await _report_failure(ctx, message)
        raise OpsError(message) from None
    elapsed_ms = (time.monotonic() - started) * 1000
    ctx.metrics.incr("BackupSuccess")
    ctx.metrics.observe("BackupDuration", elapsed_ms)
    ctx.metrics.gauge("BackupSize", float(result.manifest.size), unit="Bytes")
    return result


async def _report_failure(ctx: OpsContext, message: str) -> None:
    ctx.metrics.incr("BackupFailure")
    ctx.log(f"backup FAILED: {message}")
    await alert_failure(
        ctx.settings,
        ctx.metrics,
        title="Database backup failed",
        message=message,
        fields={"database": describe(ctx.database_url), "target": ctx.storage.url},
    )


async def _backup(ctx: OpsContext, options: BackupOptions) -> BackupResult:
    log = ctx.log
    url = ctx.database_url
    database = database_name(url)
    log(f"backup of {describe(url)} to {ctx.storage.url} ({options.fmt} format): connecting")
    if ctx.settings.is_production and ctx.storage.url.startswith("file:"):
        log("WARNING: SAGE_BACKUP_URL is a local directory; on ECS it vanishes with the task. Use s3://bucket/prefix")
    conn = await connect(url, timeout=ctx.connect_timeout, application="sage-backup")
    try:
        major = await server_major(conn)
        tool = ctx.tools.for_server("pg_dump", major)
        pg_dump, dump_major = tool.path, tool.major
        log(f"using pg_dump {dump_major} ({pg_dump}) for PostgreSQL {major}")
        try:
            waited = await acquire_advisory_lock(
                conn, advisory_key("backup", database), wait_seconds=options.lock_wait_seconds
            )
        except TimeoutError as exc:
            raise OpsError(
                f"another backup of {database} is running ({exc}); not starting a second", EXIT_LOCK_TIMEOUT
            ) from None
        if waited:
            log(f"waited for the backup running in {waited}")
        db_size = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        key = await _free_key(ctx, options)
        log(f"database is {human_bytes(db_size)} on disk; writing {key}")
        return await _dump_and_store(ctx, conn, options, pg_dump, dump_major, key, db_size)
    finally:
        await conn.close()


async def _free_key(ctx: OpsContext, options: BackupOptions) -> str:
    """backup_YYYYMMDD_HHMMSS: if this second's name is taken, the next second's."""
    now = options.now or utcnow()
    for _ in range(5):
        key = backup_key(now, options.fmt)
        taken = await asyncio.to_thread(_name_taken, ctx, key)
        if not taken:
            return key
        if options.now is not None:
            raise OpsError(f"{key} already exists in {ctx.storage.url}")
        await asyncio.sleep(1.0 - now.microsecond / 1e6)
        now = utcnow()
    raise OpsError(f"cannot find a free backup name in {ctx.storage.url}")


async def _dump_and_store(
    ctx: OpsContext,
    conn: asyncpg.Connection,
    options: BackupOptions,
    pg_dump: str,
    dump_major: int,
    key: str,
    db_size: int,
) -> BackupResult:
    log = ctx.log
    storage = ctx.storage
    started_at = utcnow()
    started = time.monotonic()
    snapshot_tx = conn.transaction(isolation="repeatable_read", readonly=True)
    await snapshot_tx.start()
    # The snapshot must outlive pg_dump's import of it; no idle or statement limit may end it early.
    await conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0; SET LOCAL statement_timeout = 0")
    snapshot = str(await conn.fetchval("SELECT pg_export_snapshot()"))
    revision = await alembic_revision(conn)
    version = await server_version(conn)

    dsn, env = client_env(ctx.database_url, "sage-backup")
    argv = [
        pg_dump,
        f"--dbname={dsn}",
        f"--snapshot={snapshot}",
        f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}",
        "--no-owner",
        "--no-privileges",
        "--format=p" if options.fmt == "plain" else "--format=c",
        f"--compress={options.compress_level}",
    ]
    part_size = options.part_size or choose_part_size(db_size)
    upload: Upload = await asyncio.to_thread(
        storage.begin_upload, key, part_size=part_size, content_type=CONTENT_TYPES[options.fmt]
    )
    completed = False
    stored_manifest = False
    proc: asyncio.subprocess.Process | None = None
    counts_task: asyncio.Task[dict[str, int]] | None = None
    try:
        log(f"pg_dump started (snapshot {snapshot}, revision {revision or 'none'})")
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stderr is not None
        stderr_task = asyncio.create_task(proc.stderr.read())
        # Counted while pg_dump runs: same snapshot, so the counts match the dump exactly.
        counts_task = asyncio.create_task(table_row_counts(conn))
        digest = hashlib.sha256()
        total = 0
        pending = bytearray()
        with ByteProgress(log, f"uploading {key}") as progress:
            while chunk := await proc.stdout.read(PUMP_CHUNK):
                digest.update(chunk)
                total += len(chunk)
                pending += chunk
                if len(pending) >= PUMP_CHUNK:
                    await asyncio.to_thread(upload.write, bytes(pending))
                    progress.advance(len(pending))
                    pending.clear()
            if pending:
                await asyncio.to_thread(upload.write, bytes(pending))
                progress.advance(len(pending))
        returncode = await proc.wait()
        errors = (await stderr_task).decode(errors="replace")
        if returncode != 0:
            how = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
            detail = one_line(errors)
            raise OpsError(
                f"pg_dump failed ({how}{': ' + detail if detail else ''}); the upload was aborted, nothing was stored"
            )
        row_counts = await counts_task
        await snapshot_tx.rollback()

        stored_size = await asyncio.to_thread(upload.complete)
        completed = True
        visible = await asyncio.to_thread(storage.size, key)
        if stored_size != total or visible != total:
            raise OpsError(f"{key} was stored with {visible} bytes but pg_dump wrote {total}; not counted as a backup")
        finished_at = utcnow()
        manifest = Manifest(
            key=key,
            format=options.fmt,
            sha256=digest.hexdigest(),
            size=total,
            database=database_name(ctx.database_url),
            server_version=version,
            pg_dump_major=dump_major,
            alembic_revision=revision,
            row_counts=row_counts,
            snapshot=snapshot,
            started_at=started_at.isoformat(),
            finished_at=finished_at.isoformat(),
            duration_seconds=round(time.monotonic() - started, 3),
            database_size_bytes=db_size,
        )
        await asyncio.to_thread(storage.put_bytes, manifest_key(key), manifest.to_bytes())
        stored_manifest = True
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        if counts_task is not None and not counts_task.done():
            counts_task.cancel()
            await asyncio.gather(counts_task, return_exceptions=True)
        if not completed:
            await asyncio.to_thread(upload.abort)
        elif not stored_manifest:
            await asyncio.to_thread(_delete_quietly, ctx, key)
        if not conn.is_closed() and conn.is_in_transaction():
            with contextlib.suppress(Exception):  # the connection is closed next anyway
                await snapshot_tx.rollback()

    rate = db_size / max(manifest.duration_seconds, 1e-6) / 1e6
    log(
        f"backup complete: {key}, {human_bytes(total)} compressed from {human_bytes(db_size)}, "
        f"{sum(row_counts.values())} rows in {len(row_counts)} tables, sha256 {manifest.sha256[:16]}…, "
        f"{manifest.duration_seconds:.1f} s ({rate:.1f} MB/s of database)"
    )
    deleted = await asyncio.to_thread(_retention, ctx)
    return BackupResult(manifest=manifest, deleted=deleted)


def _name_taken(ctx: OpsContext, key: str) -> bool:
    return ctx.storage.size(key) is not None or ctx.storage.size(manifest_key(key)) is not None


def _delete_quietly(ctx: OpsContext, key: str) -> None:
    try:
        ctx.storage.delete(key)
    except Exception:
        ctx.log(f"could not delete the unfinished {key}; it has no manifest and is not counted as a backup")


def _retention(ctx: OpsContext) -> list[str]:
    """Runs only after a backup succeeded: a failed one never costs an older good one.

    A pruning error does not make the new backup bad: it is logged and counted
    (BackupPruneFailure) so storage growth is noticed, and the backup still succeeds.
    """
    keep = ctx.settings.backup_retention
    deleted: list[str] = []
    try:
        deleted = Catalog(ctx.storage).prune(keep, utcnow(), ctx.log)
    except Exception as exc:
        ctx.metrics.incr("BackupPruneFailure")
        ctx.log(f"WARNING: could not delete old backups ({one_line_error(exc)}); the new backup is good")
    try:
        for name in ctx.storage.sweep_incomplete(STALE_UPLOAD_AGE):
            ctx.log(f"aborted an upload abandoned more than a day ago: {name}")
    except Exception as exc:  # the bucket's lifecycle rule is the backstop for these
        ctx.log(f"note: could not list abandoned uploads ({one_line_error(exc)})")
    return deleted
