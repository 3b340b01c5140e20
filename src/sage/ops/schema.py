"""Alembic, driven from Python with the migrations shipped inside the package.

Alembic's env.py runs its own event loop, so the async helpers here run Alembic in a
worker thread; this lets the app's lifespan (already inside a loop) apply migrations
for the embedded default.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from sage.store.db import asyncpg_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(
    url: str,
    *,
    script_location: Path | None = None,
    lock_timeout: str = "5s",
    statement_timeout: str = "10min",
    output: io.StringIO | None = None,
) -> Config:
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    cfg.attributes["lock_timeout"] = lock_timeout
    cfg.attributes["statement_timeout"] = statement_timeout
    return cfg


def head_revision(script_location: Path | None = None) -> str | None:
    script = ScriptDirectory.from_config(alembic_config("postgresql://", script_location=script_location))
    return script.get_current_head()


def upgrade_sync(url: str, revision: str = "head", **kwargs: object) -> None:
    command.upgrade(alembic_config(url, **kwargs), revision)  # type: ignore[arg-type]


def downgrade_sync(url: str, revision: str, **kwargs: object) -> None:
    command.downgrade(alembic_config(url, **kwargs), revision)  # type: ignore[arg-type]


def upgrade_sql(
    url: str, revision: str = "head", start: str | None = None, *, script_location: Path | None = None
) -> str:
    """The SQL an upgrade from `start` would run (offline mode), for --dry-run."""
    out = io.StringIO()
    cfg = alembic_config(url, script_location=script_location, output=out)
    rev = f"{start}:{revision}" if start else revision
    command.upgrade(cfg, rev, sql=True)
    return out.getvalue()


async def upgrade(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade_sync, url, revision)


async def downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(downgrade_sync, url, revision)


async def current_revision(url: str) -> str | None:
    engine = create_async_engine(asyncpg_url(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()
