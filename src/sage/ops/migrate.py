"""`sage db migrate`: the one-off ECS task that runs before a service update.

The safe version of the spec's `scripts/migrate.sh`, in this order:

1. connectivity: a database that cannot be reached is one line and exit 1;
2. a PostgreSQL advisory lock (held on the maintenance database, keyed by the target
   database's name) so two tasks never migrate at once: the second waits, up to
   `--lock-wait`, then exits 3 having changed nothing;
3. the current revision is recorded and a backup taken (`sage db backup`);
4. Alembic upgrades with a short lock_timeout (a migration never queues the app's
   queries behind it for long) and a statement_timeout, one transaction per revision;
5. on failure: PostgreSQL's transactional DDL rolls the failed revision back. If the
   schema is back at the recorded revision, nothing else is done. If it is not (an
   earlier revision of the same run had committed, or a revision ran outside a
   transaction), the backup is restored automatically; the partly migrated database
   is kept under another name, so nothing written before or during the run is lost.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import asyncpg
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from sage.ops import schema
from sage.ops.backup import FORMATS, BackupOptions, run_backup
from sage.ops.common import EXIT_LOCK_TIMEOUT, OpsError, StepLog, alert_failure
from sage.ops.context import OpsContext
from sage.ops.pgtools import (
    MAINTENANCE_DATABASE,
    acquire_advisory_lock,
    advisory_key,
    alembic_revision,
    connect,
    database_name,
    describe,
    one_line_error,
    server_version,
    with_database,
)
from sage.ops.restore import run_restore

TIMEOUT_PATTERN = re.compile(r"^\d+(us|ms|s|min|h|d)?$")


@dataclass
class MigrateOptions:
    revision: str = "head"
    dry_run: bool = False
    lock_wait_seconds: float = 300.0
    lock_timeout: str = "5s"
    statement_timeout: str = "10min"
    script_location: Path | None = None
    backup_format: str = "plain"


@dataclass
class MigrateResult:
    before: str | None
    after: str | None
    backup_key: str | None = None
    sql: str | None = None  # --dry-run

    @property
    def changed(self) -> bool:
        return self.before != self.after


def check_timeout(name: str, value: str) -> str:
    if not TIMEOUT_PATTERN.match(value.strip()):
        raise OpsError(f"{name} must be a PostgreSQL duration such as 5s, 500ms or 10min, not {value!r}", 2)
    return value.strip()


async def run_migrate(ctx: OpsContext, options: MigrateOptions | None = None) -> MigrateResult:
    options = options or MigrateOptions()
    check_timeout("--lock-timeout", options.lock_timeout)
    check_timeout("--statement-timeout", options.statement_timeout)
    if options.backup_format not in FORMATS:
        raise OpsError(f"--backup-format must be plain or custom, not {options.backup_format!r}", 2)
    log = ctx.log
    url = ctx.database_url
    database = database_name(url)

    log(f"checking connectivity to {describe(url)}")
    conn = await connect(url, timeout=ctx.connect_timeout, application="sage-migrate")
    try:
        log(f"database reachable (PostgreSQL {await server_version(conn)})")
        if options.dry_run:
            return await _dry_run(ctx, conn, options)
    finally:
        await conn.close()

    lock_conn = await connect(
        with_database(url, MAINTENANCE_DATABASE), timeout=ctx.connect_timeout, application="sage-migrate-lock"
    )
    try:
        await _lock(ctx, lock_conn, database, options.lock_wait_seconds)
        return await _migrate_locked(ctx, options)
    finally:
        await lock_conn.close()  # releases the advisory lock


async def _lock(ctx: OpsContext, conn: asyncpg.Connection, database: str, wait_seconds: float) -> None:
    def waiting(holder: str) -> None:
        ctx.log(f"another migration holds the lock ({holder}); waiting up to {wait_seconds:g} s")

    try:
        holder = await acquire_advisory_lock(
            conn, advisory_key("migrate", database), wait_seconds=wait_seconds, on_wait=waiting
        )
    except TimeoutError as exc:
        raise OpsError(
            f"gave up after {wait_seconds:g} s waiting for the migration lock on {database}, held by {exc}: "
            "another migration is running; nothing was changed",
            EXIT_LOCK_TIMEOUT,
        ) from None
    ctx.log("migration lock taken" + (f" (after waiting for {holder})" if holder else ""))


def _script(options: MigrateOptions, url: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(schema.alembic_config(url, script_location=options.script_location))


def _pending(options: MigrateOptions, url: str, current: str | None) -> list[str]:
    """Revisions an upgrade would apply, oldest first."""
    script = _script(options, url)
    try:
        revisions = list(script.iterate_revisions(options.revision, current or "base"))
    except CommandError as exc:
        raise OpsError(
            f"cannot plan the upgrade from {current or 'an empty database'} to {options.revision}: {exc}. "
            "Is the database newer than this Sage release?",
        ) from None
    return [rev.revision for rev in reversed(revisions)]


async def _current(url: str, timeout: float) -> str | None:
    conn = await connect(url, timeout=timeout, application="sage-migrate")
    try:
        return await alembic_revision(conn)
    finally:
        await conn.close()


async def _dry_run(ctx: OpsContext, conn: asyncpg.Connection, options: MigrateOptions) -> MigrateResult:
    current = await alembic_revision(conn)
    pending = _pending(options, ctx.database_url, current)
    if not pending:
        ctx.log(f"dry run: already at {current}; nothing would run")
        return MigrateResult(current, current, sql="")
    sql = await asyncio.to_thread(
        schema.upgrade_sql, ctx.database_url, options.revision, current, script_location=options.script_location
    )
    ctx.log(
        f"dry run: would back up to {ctx.storage.url}, then apply {', '.join(pending)} "
        f"(lock_timeout {options.lock_timeout}, statement_timeout {options.statement_timeout}); SQL follows on stdout"
    )
    return MigrateResult(current, current, sql=sql)


async def _migrate_locked(ctx: OpsContext, options: MigrateOptions) -> MigrateResult:
    log = ctx.log
    url = ctx.database_url
    recorded = await _current(url, ctx.connect_timeout)
    pending = _pending(options, url, recorded)
    log(f"recorded revision: {recorded or 'none (empty database)'}")
    if not pending:
        log(f"already at {recorded}; nothing to migrate")
        return MigrateResult(recorded, recorded)
    log(f"to apply: {', '.join(pending)}")

    log("taking a backup before migrating")
    try:
        backup = await run_backup(
            ctx, BackupOptions(fmt=options.backup_format, lock_wait_seconds=options.lock_wait_seconds)
        )
    except OpsError as exc:
        raise OpsError(f"the pre-migration backup failed, so nothing was migrated: {exc}", exc.code) from None
    key = backup.manifest.key

    started = time.monotonic()
    log(
        f"upgrading to {options.revision} (lock_timeout {options.lock_timeout}, statement_timeout {options.statement_timeout})"
    )
    try:
        with _forward_alembic_log(log):
            await asyncio.to_thread(
                schema.upgrade_sync,
                url,
                options.revision,
                script_location=options.script_location,
                lock_timeout=options.lock_timeout,
                statement_timeout=options.statement_timeout,
            )
    except Exception as exc:
        await _recover(ctx, options, recorded, pending, key, exc)
    after = await _current(url, ctx.connect_timeout)
    ctx.metrics.incr("MigrationSuccess")
    log(f"migration complete: {recorded or 'empty'} -> {after} in {time.monotonic() - started:.1f} s (backup {key})")
    return MigrateResult(recorded, after, backup_key=key)


def _cause(exc: BaseException) -> str:
    """The database's own message, not SQLAlchemy's wrapper around it."""
    inner = getattr(exc, "orig", None) or exc
    inner = getattr(inner, "__cause__", None) or inner
    text = one_line_error(inner)
    if "lock timeout" in text:
        text += " (a long transaction held a table lock; retry when it ends)"
    elif "statement timeout" in text:
        text += " (raise --statement-timeout for this migration, or make it smaller)"
    return text


async def _recover(
    ctx: OpsContext,
    options: MigrateOptions,
    recorded: str | None,
    pending: list[str],
    key: str,
    exc: BaseException,
) -> NoReturn:
    log = ctx.log
    cause = _cause(exc)
    try:
        now_at = await _current(ctx.database_url, ctx.connect_timeout)
    except OpsError:
        now_at = "unknown (database unreachable)"
    failed = pending[pending.index(now_at) + 1] if now_at in pending and now_at != pending[-1] else pending[0]
    if now_at == recorded:
        message = (
            f"migration failed at {failed}: {cause}; the schema is back at {recorded or 'empty'} "
            f"(the failed revision rolled back), no data was changed; backup {key} was not needed"
        )
        log(message)
        await _fail(ctx, message)
    log(f"the schema is at {now_at}, not the recorded {recorded}: restoring backup {key} automatically")
    try:
        restored = await run_restore(ctx, key, force=True, previous_label="failed_migration")
        back_at = await _current(ctx.database_url, ctx.connect_timeout)
    except OpsError as restore_error:
        message = (
            f"migration failed at {failed}: {cause}; the schema was left at {now_at} and the automatic restore of "
            f"{key} ALSO failed: {restore_error}. Follow docs/runbooks/disaster-recovery.md"
        )
        log(message)
        await _fail(ctx, message)
    message = (
        f"migration failed at {failed}: {cause}; revisions up to {now_at} had committed, so backup {key} "
        f"was restored and the database is back at {back_at or 'empty'}; the partly migrated database is kept "
        f"as {restored.previous} (rows written during the migration are there)"
    )
    log(message)
    await _fail(ctx, message)


async def _fail(ctx: OpsContext, message: str) -> NoReturn:
    ctx.metrics.incr("MigrationFailure")
    await alert_failure(
        ctx.settings,
        ctx.metrics,
        title="Database migration failed",
        message=message,
        fields={"database": describe(ctx.database_url)},
    )
    raise OpsError(message)


class _StepHandler(logging.Handler):
    def __init__(self, log: StepLog) -> None:
        super().__init__(logging.INFO)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Running upgrade"):
            self._log(message.replace("Running upgrade", "applying").strip())


@contextmanager
def _forward_alembic_log(log: StepLog) -> Iterator[None]:
    """Alembic's "Running upgrade a -> b" lines, as timestamped steps."""
    logger = logging.getLogger("alembic.runtime.migration")
    handler = _StepHandler(log)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
