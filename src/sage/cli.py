"""The `sage` command.

  sage serve              the API (and, in the embedded default, ingestion in-process)
  sage db upgrade|downgrade|current
                          schema migrations (the ops issue adds migrate/backup/restore/verify-backup)

Configuration errors print one line naming the variable and exit 2; nothing prints a
traceback for a mistake the operator can fix.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from sage.settings import ConfigurationError, Settings, env_name, load_settings

app = typer.Typer(
    name="sage",
    help="Sage.ai: an AI assistant for crypto-market investors, grounded in live market data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema and operations: upgrade, downgrade, current.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"sage: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    try:
        settings = load_settings(**overrides)
        settings.check_production()
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc", ())
        name = env_name(str(loc[0])) if loc else "configuration"
        fail(f"invalid configuration: {name}: {first.get('msg')}", 2)
    except ConfigurationError as exc:
        fail(str(exc), 2)
    return settings


def database_url_or_embedded(settings: Settings) -> tuple[str, object | None]:
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


def _with_database(action: str) -> tuple[Settings, str, object | None]:
    settings = settings_or_exit()
    try:
        url, embedded = database_url_or_embedded(settings)
    except Exception as exc:
        fail(f"cannot start the embedded PostgreSQL for {action}: {exc}")
    return settings, url, embedded


def _stop(embedded: object | None) -> None:
    if embedded is not None:
        embedded.stop()  # type: ignore[attr-defined]


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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
