"""`sage db restore [KEY | latest]`: verified download, restore beside, switch by rename.

The order keeps the live database untouched until the last step: the object is
downloaded and its SHA-256 checked before anything touches PostgreSQL; it is restored
into a fresh database; its row counts and Alembic revision are checked against the
manifest; only then are the two databases swapped by renaming both in one transaction.
The replaced database is kept (renamed) until an operator drops it.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from sage.ops.catalog import Catalog, Manifest
from sage.ops.common import ByteProgress, OpsError, human_bytes, one_line, utcnow
from sage.ops.context import OpsContext
from sage.ops.pgtools import (
    MAINTENANCE_DATABASE,
    MAX_IDENTIFIER,
    alembic_revision,
    client_env,
    connect,
    database_exists,
    database_name,
    describe,
    drop_database,
    quote_ident,
    server_major,
    sessions_on,
    table_row_counts,
    with_database,
)

FEED_CHUNK = 1024 * 1024


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def derived_name(base: str, suffix: str) -> str:
    """`<base>_<suffix>`, shortened to PostgreSQL's identifier limit."""
    room = MAX_IDENTIFIER - len(suffix) - 1
    return f"{base.encode()[:room].decode(errors='ignore')}_{suffix}"


# --- download ------------------------------------------------------------------------------------


async def fetch_verified(ctx: OpsContext, manifest: Manifest, directory: Path) -> Path:
    """Download a backup into `directory` and check it against its manifest, or refuse it."""
    path = directory / manifest.key
    digest = hashlib.sha256()
    size = 0

    def download(progress: ByteProgress) -> None:
        nonlocal size
        with path.open("wb") as handle:
            for chunk in ctx.storage.iter_chunks(manifest.key):
                digest.update(chunk)
                handle.write(chunk)
                size += len(chunk)
                progress.advance(len(chunk))

    ctx.log(f"downloading {manifest.key} ({human_bytes(manifest.size)}) from {ctx.storage.url}")
    try:
        with ByteProgress(ctx.log, f"downloading {manifest.key}", total=manifest.size) as progress:
            await asyncio.to_thread(download, progress)
    except KeyError:
        raise OpsError(f"{manifest.key} disappeared from {ctx.storage.url} during the download") from None
    actual = digest.hexdigest()
    if size != manifest.size or actual != manifest.sha256:
        path.unlink(missing_ok=True)
        raise OpsError(
            f"{manifest.key} failed its checksum: got {size} bytes with sha256 {actual[:16]}…, "
            f"the manifest says {manifest.size} bytes with sha256 {manifest.sha256[:16]}…; "
            "the object is corrupt or truncated and was not restored"
        )
    ctx.log(f"sha256 verified ({actual[:16]}…)")
    return path


# --- restore into a database ------------------------------------------------------------------


async def restore_into(ctx: OpsContext, path: Path, manifest: Manifest, database: str, *, jobs: int) -> None:
    """Load a downloaded backup into an existing empty database; any error fails the whole."""
    url = with_database(ctx.database_url, database)
    conn = await connect(url, timeout=ctx.connect_timeout, application="sage-restore")
    try:
        server = await server_major(conn)
    finally:
        await conn.close()
    written_by = manifest.pg_dump_major
    if manifest.format != "custom" and written_by > server:
        # A plain dump is SQL for the pg_dump's own major (pg_dump 17+ writes `SET transaction_timeout`).
        raise OpsError(
            f"{manifest.key} is SQL written by pg_dump {written_by}, which PostgreSQL {server} cannot run; "
            f"restore it into PostgreSQL {written_by} or later (backups taken now use tools matching the server)",
            2,
        )
    what = f"the pg_dump {written_by} that wrote this backup"
    dsn, env = client_env(url, "sage-restore")
    if manifest.format == "custom":
        tool = ctx.tools.for_server("pg_restore", server, at_least=written_by, what=what).path
        argv = [
            tool,
            f"--dbname={dsn}",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            f"--jobs={max(1, jobs)}",
            str(path),
        ]
        await asyncio.to_thread(_run_tool, argv, env, None)
    else:
        tool = ctx.tools.for_server("psql", server, at_least=written_by, what=what).path
        argv = [tool, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", f"--dbname={dsn}", "-f", "-"]
        await asyncio.to_thread(_run_tool, argv, env, path)


def _run_tool(argv: list[str], env: dict[str, str], gzipped_input: Path | None) -> None:
    """Run psql / pg_restore; for psql, stream the decompressed dump into its stdin."""
    name = Path(argv[0]).name
    with tempfile.TemporaryFile() as errors:
        # stderr goes to a file: a tool blocked on a full stderr pipe while we block on its
        # stdin would deadlock.
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE if gzipped_input else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        try:
            if gzipped_input is not None:
                assert proc.stdin is not None
                try:
                    with gzip.open(gzipped_input, "rb") as source:
                        while chunk := source.read(FEED_CHUNK):
                            proc.stdin.write(chunk)
                except BrokenPipeError:
                    pass  # the tool stopped on an error; its exit status and stderr say which
                except (OSError, EOFError) as exc:
                    proc.kill()
                    raise OpsError(f"the backup could not be decompressed ({exc})") from None
                finally:
                    try:
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        errors.seek(0)
        detail = one_line(errors.read().decode(errors="replace"))
    if returncode != 0:
        raise OpsError(f"{name} failed (exit status {returncode}){': ' + detail if detail else ''}")


def compare_with_manifest(manifest: Manifest, counts: dict[str, int], revision: str | None) -> list[str]:
    """Every way a restored database differs from what the manifest recorded at dump time."""
    problems = []
    for table in sorted(set(manifest.row_counts) | set(counts)):
        expected = manifest.row_counts.get(table)
        actual = counts.get(table)
        if expected is None:
            problems.append(f"{table}: not in the backup's manifest but present after restore ({actual} rows)")
        elif actual is None:
            problems.append(f"{table}: missing after restore (manifest: {expected} rows)")
        elif expected != actual:
            problems.append(f"{table}: {actual} rows after restore, manifest says {expected}")
    if revision != manifest.alembic_revision:
        problems.append(
            f"alembic revision {revision or 'none'} after restore, manifest says {manifest.alembic_revision}"
        )
    return problems


async def inspect_database(ctx: OpsContext, database: str) -> tuple[dict[str, int], str | None]:
    conn = await connect(with_database(ctx.database_url, database), timeout=ctx.connect_timeout)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await table_row_counts(conn), await alembic_revision(conn)
    finally:
        await conn.close()


# --- the command ---------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    manifest: Manifest
    database: str
    previous: str | None  # where the replaced database was kept
    download_seconds: float
    restore_seconds: float
    dry_run: bool = False
    plan: list[str] = field(default_factory=list)


async def run_restore(
    ctx: OpsContext,
    ref: str = "latest",
    *,
    force: bool = False,
    dry_run: bool = False,
    jobs: int | None = None,
    previous_label: str = "pre_restore",
) -> RestoreResult:
    log = ctx.log
    target = database_name(ctx.database_url)
    if target == MAINTENANCE_DATABASE:
        raise OpsError(f"refusing to restore over the maintenance database {MAINTENANCE_DATABASE!r}", 2)
    manifest = await asyncio.to_thread(Catalog(ctx.storage).resolve, ref)
    jobs = jobs or default_jobs()
    stamp = f"{utcnow():%Y%m%d%H%M%S}"
    fresh = derived_name(target, f"restoring_{stamp}")
    previous = derived_name(target, f"{previous_label}_{stamp}")
    admin = await connect(
        with_database(ctx.database_url, MAINTENANCE_DATABASE), timeout=ctx.connect_timeout, application="sage-restore"
    )
    try:
        exists = await database_exists(admin, target)
        sessions = await sessions_on(admin, target) if exists else []
        if dry_run:
            plan = _plan(ctx, manifest, target, fresh, previous, exists, sessions, force, jobs)
            for line in plan:
                log(line)
            return RestoreResult(manifest, target, None, 0.0, 0.0, dry_run=True, plan=plan)
        if sessions and not force:
            raise OpsError(_in_use(target, sessions))
        log(f"restoring {manifest.key} (revision {manifest.alembic_revision}) into {describe(ctx.database_url)}")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="sage-restore-") as workdir:
            path = await fetch_verified(ctx, manifest, Path(workdir))
            downloaded = time.monotonic()
            await _restore_fresh(ctx, admin, path, manifest, fresh, jobs)
        restored = time.monotonic()
        kept = await _switch(ctx, admin, target, fresh, previous if exists else None, force=force)
    finally:
        await admin.close()
    result = RestoreResult(manifest, target, kept, downloaded - started, restored - downloaded)
    log(
        f"restore complete: {target} now holds {manifest.key} (taken {manifest.finished_at}); "
        f"download {result.download_seconds:.1f} s + restore {result.restore_seconds:.1f} s"
    )
    if kept:
        log(f"the replaced database is kept as {kept}; drop it once satisfied: DROP DATABASE {quote_ident(kept)};")
    return result


def _in_use(target: str, sessions: list[str]) -> str:
    shown = ", ".join(sessions[:3]) + (f" and {len(sessions) - 3} more" if len(sessions) > 3 else "")
    return (
        f"database {target} is in use by {len(sessions)} session(s): {shown}; stop the service first "
        "(scale the ECS service to 0) or pass --force to disconnect them"
    )


def _plan(
    ctx: OpsContext,
    manifest: Manifest,
    target: str,
    fresh: str,
    previous: str,
    exists: bool,
    sessions: list[str],
    force: bool,
    jobs: int,
) -> list[str]:
    tool = f"pg_restore --jobs={jobs}" if manifest.format == "custom" else "psql (one transaction)"
    rows = sum(manifest.row_counts.values())
    plan = [
        f"dry run: would restore {manifest.key} (taken {manifest.finished_at}, {human_bytes(manifest.size)}, "
        f"revision {manifest.alembic_revision}, {rows} rows in {len(manifest.row_counts)} tables) "
        f"into {describe(ctx.database_url)}",
        f"  1. download it from {ctx.storage.url} and check its sha256 ({manifest.sha256[:16]}…)",
        f"  2. create database {fresh} and restore into it with {tool}",
        "  3. compare its row counts and Alembic revision with the manifest",
    ]
    if exists:
        plan.append(f"  4. rename {target} -> {previous} and {fresh} -> {target} in one transaction")
        if sessions:
            action = "disconnect them (--force)" if force else "REFUSE: pass --force or stop the service"
            plan.append(f"  {target} has {len(sessions)} other session(s): would {action}")
        plan.append(f"  {previous} is kept until you drop it")
    else:
        plan.append(f"  4. rename {fresh} -> {target} ({target} does not exist yet)")
    plan.append("nothing was changed")
    return plan


async def _restore_fresh(
    ctx: OpsContext, admin: asyncpg.Connection, path: Path, manifest: Manifest, fresh: str, jobs: int
) -> None:
    ctx.log(f"creating database {fresh}")
    await admin.execute(f"CREATE DATABASE {quote_ident(fresh)} TEMPLATE template0")
    try:
        ctx.log(f"restoring into {fresh} ({manifest.format} format)")
        await restore_into(ctx, path, manifest, fresh, jobs=jobs)
        counts, revision = await inspect_database(ctx, fresh)
        problems = compare_with_manifest(manifest, counts, revision)
        if problems:
            raise OpsError(f"the restored copy does not match the backup's manifest: {'; '.join(problems[:5])}")
        ctx.log(f"restored copy checked: {sum(counts.values())} rows in {len(counts)} tables, revision {revision}")
    except BaseException:
        ctx.log(f"dropping {fresh}: the restore did not complete; the live database was not touched")
        await drop_database(admin, fresh)
        raise


async def _switch(
    ctx: OpsContext, admin: asyncpg.Connection, target: str, fresh: str, previous: str | None, *, force: bool
) -> str | None:
    """Swap the restored copy in; returns the name the replaced database is kept under."""
    if previous is None:
        await admin.execute(f"ALTER DATABASE {quote_ident(fresh)} RENAME TO {quote_ident(target)}")
        ctx.log(f"renamed {fresh} -> {target}")
        return None
    sessions = await sessions_on(admin, target)
    if sessions and not force:
        raise OpsError(
            _in_use(target, sessions)
            + f"; it came into use during the restore, and the restored copy is kept as {fresh}"
        )
    await admin.execute(f"ALTER DATABASE {quote_ident(target)} WITH ALLOW_CONNECTIONS false")
    try:
        if sessions:
            ctx.log(f"disconnecting {len(sessions)} session(s) from {target} (--force)")
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                target,
            )
        for attempt in range(5):
            try:
                async with admin.transaction():
                    await admin.execute(f"ALTER DATABASE {quote_ident(target)} RENAME TO {quote_ident(previous)}")
                    await admin.execute(f"ALTER DATABASE {quote_ident(fresh)} RENAME TO {quote_ident(target)}")
                break
            except asyncpg.ObjectInUseError:
                if attempt == 4:
                    raise OpsError(
                        f"{target} is still in use; nothing was switched and the restored copy is kept as {fresh}"
                    ) from None
                await asyncio.sleep(1.0)
    except BaseException:
        await admin.execute(f"ALTER DATABASE {quote_ident(target)} WITH ALLOW_CONNECTIONS true")
        raise
    await admin.execute(f"ALTER DATABASE {quote_ident(previous)} WITH ALLOW_CONNECTIONS true")
    ctx.log(f"switched: {target} -> {previous}, {fresh} -> {target}")
    return previous
