"""The `sage` command.

  sage serve              the API (and, in the embedded default, ingestion in-process)
  sage ingest             the market-data ingestor (Binance, Gate.io, Fear & Greed -> Valkey, PostgreSQL)
  sage db upgrade|downgrade|current
                          schema migrations
  sage db migrate|backup|restore|verify-backup|backups
                          safe production migrations, backups and restores (sage.ops)

Configuration errors print one line naming the variable and exit 2; nothing prints a
traceback for a mistake the operator can fix.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from sage.settings import ConfigurationError, Settings, env_name, load_settings

if TYPE_CHECKING:
    from sage.store.embedded_pg import EmbeddedPostgres

app = typer.Typer(
    name="sage",
    help="Sage.ai: an AI assistant for crypto-market investors, grounded in live market data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="Database schema and operations: upgrade, downgrade, current, migrate, backup, restore, verify-backup.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"sage: {message}", err=True)
    raise typer.Exit(code)


def fail_with(action: str, exc: BaseException, code: int = 1) -> NoReturn:
    """The one-line report of an unexpected error: the operator gets its type and first line,
    never a traceback (the log has the details)."""
    detail = str(exc).strip().splitlines()
    fail(f"{action} failed: {type(exc).__name__}{': ' + detail[0] if detail else ''}", code)


def start_observability_for(settings: Settings, service: str) -> Any:
    """Logging, Sentry and metric sinks for a command, the same way `sage serve` does;
    returns the metrics registry and a function that flushes the sinks at exit."""
    from sage.observability.logging import configure_logging
    from sage.observability.metrics import Metrics
    from sage.observability.setup import configure_observability

    configure_logging(settings.log_level, json=settings.log_json)
    metrics = Metrics()
    exporters = configure_observability(settings, metrics, service=service)

    def close() -> None:
        if exporters.emf is not None:
            exporters.emf.close()

    return metrics, close


def settings_or_exit(**overrides: object) -> Settings:
    try:
        settings = load_settings(**overrides)
        settings.check_production()
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc", ())
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        fail(
            f"invalid configuration: {env_name(str(loc[0]))}: {message}"
            if loc
            else f"invalid configuration: {message}",
            2,
        )
    except ConfigurationError as exc:
        fail(str(exc), 2)
    return settings


def database_url_or_embedded(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL, or the embedded server (started here; the caller stops it)."""
    if settings.database_url:
        return settings.database_url, None
    from sage.store.embedded_pg import start_embedded_postgres

    embedded = start_embedded_postgres(settings.data_dir)
    return embedded.url, embedded


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default SAGE_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default SAGE_PORT, 3000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes (default SAGE_WORKERS, 1 for a 0.5 vCPU / 1 GB task)."),
    ] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (local development only).")] = False,
) -> None:
    """Start the HTTP API on http://HOST:PORT (embedded PostgreSQL and cache when unconfigured)."""
    import uvicorn

    from sage.serving import uvicorn_options

    settings = settings_or_exit()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if settings.embedded_database and workers > 1:
        fail("the embedded default runs one worker; set DATABASE_URL and VALKEY_URL for more", 2)
    typer.echo(f"sage: serving on http://{host}:{port} ({settings.env.value}, {workers} worker(s))", err=True)
    # uvicorn drains in-flight requests on SIGTERM (up to SAGE_SHUTDOWN_GRACE_SECONDS, the ALB's
    # deregistration delay), then re-raises the signal; exiting 0 marks that as the clean stop it is.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "sage.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        **uvicorn_options(settings),
    )


@app.command()
def ingest() -> None:
    """Run the market-data ingestor (its own process; an ECS service of its own in production).

    Connects to Binance and Gate.io (SAGE_BINANCE_WS_URL, SAGE_GATEIO_WS_URL) for the 24 h tickers of SAGE_SYMBOLS and polls Alternative.me's Fear & Greed index (SAGE_FNG_URL); with SAGE_MARKET_SOURCE=replay it plays the recorded session instead. Latest tickers go to Valkey (TTL 300 s) and every update is published for the API's live streams; one-minute candles and Fear & Greed history go to PostgreSQL.

    Needs VALKEY_URL and DATABASE_URL. Start as many as you like: a Valkey lease per feed keeps one ingestor active and the others on standby, taking over within SAGE_FEED_LEASE_SECONDS if the active one stops. SIGTERM or Ctrl-C stops cleanly and hands the feeds over at once.
    """

    from sage.market.ingest import run_standalone
    from sage.settings import MarketSource

    settings = settings_or_exit()
    if settings.market_source is MarketSource.OFF:
        fail("SAGE_MARKET_SOURCE=off: there is nothing to ingest", 2)
    if not settings.valkey_url:
        fail(
            "sage ingest needs VALKEY_URL (API processes read market data from Valkey); "
            "without Valkey, `sage serve` ingests in-process",
            2,
        )
    if not settings.database_url:
        fail("sage ingest needs DATABASE_URL (candles and Fear & Greed history)", 2)
    metrics, close_observability = start_observability_for(settings, "ingestor")
    source = settings.market_source.value
    typer.echo(f"sage: ingesting market data ({source}, {len(settings.symbols)} symbols)", err=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_standalone(settings, metrics, stop)

    try:
        asyncio.run(main())
    except Exception as exc:
        fail_with("ingest", exc)
    finally:
        close_observability()
    typer.echo("sage: ingestor stopped", err=True)


def _with_database(action: str) -> tuple[Settings, str, EmbeddedPostgres | None]:
    settings = settings_or_exit()
    try:
        url, embedded = database_url_or_embedded(settings)
    except Exception as exc:
        fail_with(f"starting the embedded PostgreSQL for {action}", exc)
    return settings, url, embedded


def _stop(embedded: EmbeddedPostgres | None) -> None:
    if embedded is not None:
        embedded.stop()


def _run_schema(action: str, func: object, *args: str) -> None:
    from sqlalchemy.exc import DBAPIError, OperationalError

    _, url, embedded = _with_database(action)
    try:
        func(url, *args)  # type: ignore[operator]
    except (OSError, OperationalError, DBAPIError, ConnectionError) as exc:
        fail(f"{action} failed: cannot reach the database ({type(exc).__name__})")
    finally:
        _stop(embedded)


@db_app.command()
def upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from sage.ops import schema

    _run_schema("upgrade", schema.upgrade_sync, revision)
    typer.echo(f"sage: database upgraded to {revision}")


@db_app.command()
def downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")]) -> None:
    """Revert migrations down to REVISION."""
    from sage.ops import schema

    _run_schema("downgrade", schema.downgrade_sync, revision)
    typer.echo(f"sage: database downgraded to {revision}")


@db_app.command()
def current() -> None:
    """Print the database's current revision and the newest one this Sage ships."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from sage.ops import schema

    _, url, embedded = _with_database("current")
    try:
        revision = asyncio.run(schema.current_revision(url))
    except (OSError, OperationalError, DBAPIError, ConnectionError) as exc:
        fail(f"cannot reach the database ({type(exc).__name__})")
    finally:
        _stop(embedded)
    head = schema.head_revision()
    typer.echo(f"current: {revision or '(empty database)'}")
    typer.echo(f"head:    {head}")


# --- database operations: migrate, backup, restore, verify-backup (sage.ops) ---------------------


def _run_ops(action: str, work: Any, *, service: str, export_metrics: bool = True) -> Any:
    """Run `work(ctx)` (a coroutine function) with an OpsContext; errors are one line, never a traceback."""
    from sage.observability.metrics import Metrics
    from sage.ops.common import OpsError
    from sage.ops.context import ops_context

    settings, url, embedded = _with_database(action)
    if export_metrics:
        metrics, close_observability = start_observability_for(settings, service)
    else:
        metrics, close_observability = Metrics(), lambda: None
    try:
        return asyncio.run(work(ops_context(settings, url, metrics=metrics)))
    except OpsError as exc:
        fail(str(exc), exc.code)
    except Exception as exc:  # an ops command never ends in a traceback
        fail_with(action, exc)
    finally:
        close_observability()
        _stop(embedded)


@db_app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL that would run; change nothing.")] = False,
    lock_wait: Annotated[
        float, typer.Option(help="Seconds to wait for another migration's lock before giving up (exit 3).")
    ] = 300.0,
    lock_timeout: Annotated[
        str, typer.Option(help="PostgreSQL lock_timeout for each migration statement, e.g. 5s.")
    ] = "5s",
    statement_timeout: Annotated[
        str, typer.Option(help="PostgreSQL statement_timeout for each migration statement, e.g. 10min.")
    ] = "10min",
    backup_format: Annotated[str, typer.Option(help="Format of the pre-migration backup: plain or custom.")] = "plain",
) -> None:
    """Safely upgrade the schema: the one-off task to run before a service update.

    Checks connectivity, takes an advisory lock (a second migration waits, then exits 3),
    records the revision, backs up, then upgrades one transaction per revision. On failure
    the schema is back at the recorded revision, or the backup is restored automatically.
    """
    from sage.ops.migrate import MigrateOptions, run_migrate

    options = MigrateOptions(
        revision=revision,
        dry_run=dry_run,
        lock_wait_seconds=lock_wait,
        lock_timeout=lock_timeout,
        statement_timeout=statement_timeout,
        backup_format=backup_format,
    )
    result = _run_ops("migrate", lambda ctx: run_migrate(ctx, options), service="migrate", export_metrics=not dry_run)
    if dry_run and result.sql:
        typer.echo(result.sql)


@db_app.command()
def backup(
    format: Annotated[
        str, typer.Option("--format", help="plain (.sql.gz, psql) or custom (pg_dump -Fc, parallel pg_restore).")
    ] = "plain",
    compress_level: Annotated[int, typer.Option(min=0, max=9, help="Compression level (0-9).")] = 6,
) -> None:
    """Back up the database to SAGE_BACKUP_URL (s3://bucket/prefix or file:///path).

    pg_dump is streamed to the target with a SHA-256 manifest; the newest
    SAGE_BACKUP_RETENTION good backups are kept. Prints the new backup's name.
    """
    from sage.ops.backup import BackupOptions, run_backup

    options = BackupOptions(fmt=format, compress_level=compress_level)
    result = _run_ops("backup", lambda ctx: run_backup(ctx, options), service="backup")
    typer.echo(result.manifest.key)


@db_app.command()
def restore(
    key: Annotated[str, typer.Argument(help="A backup name (backup_YYYYMMDD_HHMMSS.sql.gz) or 'latest'.")] = "latest",
    force: Annotated[bool, typer.Option("--force", help="Disconnect sessions using the database.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")] = False,
    jobs: Annotated[int | None, typer.Option(min=1, help="pg_restore jobs for custom-format backups.")] = None,
) -> None:
    """Restore a backup: verify its checksum, restore into a fresh database, then swap it in.

    The replaced database is kept under a new name until you drop it. Refuses a database
    in use unless --force.
    """
    from sage.ops.restore import run_restore

    _run_ops(
        "restore",
        lambda ctx: run_restore(ctx, key, force=force, dry_run=dry_run, jobs=jobs),
        service="restore",
        export_metrics=not dry_run,
    )


@db_app.command("verify-backup")
def verify_backup(
    key: Annotated[str, typer.Argument(help="A backup name or 'latest'.")] = "latest",
    jobs: Annotated[int | None, typer.Option(min=1, help="pg_restore jobs for custom-format backups.")] = None,
) -> None:
    """Restore a backup into a scratch database and check it: row counts, revision, restore time (RTO)."""
    from sage.ops.verify import run_verify

    report = _run_ops("verify-backup", lambda ctx: run_verify(ctx, key, jobs=jobs), service="backup")
    if not report.ok:
        fail(f"verify-backup: {report.manifest.key} does not match its manifest: {'; '.join(report.problems[:5])}")


@db_app.command("bootstrap-roles")
def bootstrap_roles() -> None:
    """Create or update the owner, app and read-only roles (run as the master user; idempotent)."""
    from sage.ops import roles
    from sage.ops.pgtools import connect

    settings = settings_or_exit()
    given = {"OWNER": settings.db_owner_password, "APP": settings.db_app_password}
    given["READONLY"] = settings.db_readonly_password

    async def work(ctx: Any) -> int:
        owner, app, readonly = (
            roles.check_password(f"SAGE_DB_{key}_PASSWORD", secret.get_secret_value() if secret else None)
            for key, secret in given.items()
        )
        conn = await connect(ctx.database_url)
        try:
            return await roles.bootstrap_roles(conn, roles.RolePasswords(owner, app, readonly))
        finally:
            await conn.close()

    moved = _run_ops("bootstrap-roles", work, service="backup", export_metrics=False)
    typer.echo(f"sage: roles {roles.OWNER}, {roles.APP}, {roles.READONLY} ready ({moved} objects handed to the owner)")


@db_app.command("backups")
def list_backups() -> None:
    """List the good backups in SAGE_BACKUP_URL, newest first."""
    from sage.ops.catalog import Catalog
    from sage.ops.common import OpsError
    from sage.ops.storage import open_storage

    settings = settings_or_exit()
    try:
        catalog = Catalog(open_storage(settings.backup_url))
        entries = catalog.good()
        for entry in entries:
            manifest = catalog.manifest(entry.key)
            rows = sum(manifest.row_counts.values())
            typer.echo(
                f"{entry.key}  {entry.size / 1e6:10.1f} MB  revision {manifest.alembic_revision or '-'}  "
                f"{rows} rows  sha256 {manifest.sha256[:12]}"
            )
    except OpsError as exc:
        fail(str(exc), exc.code)
    except Exception as exc:
        fail_with("listing backups", exc)
    if not entries:
        typer.echo(f"no good backups in {catalog.storage.url}", err=True)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
