"""Migrations apply, revert and re-apply cleanly, and ship inside the wheel."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from sage.ops import schema
from sage.store import all_tables  # noqa: F401  (registers every table)
from sage.store.base import Base
from tests.delivery.wheelhouse import build_sage_wheel


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_upgrade_downgrade_upgrade_on_an_empty_database(fresh_database: Callable[..., Any]) -> None:
    url = await fresh_database()
    await schema.upgrade(url)
    upgraded = await _tables(url)
    assert {"users", "refresh_tokens", "alembic_version"} <= upgraded
    assert await schema.current_revision(url) == schema.head_revision()

    await schema.downgrade(url, "base")
    assert await _tables(url) == {"alembic_version"}
    assert await schema.current_revision(url) is None

    await schema.upgrade(url)
    assert await _tables(url) == upgraded


async def test_migrations_create_every_table_the_models_declare(fresh_database: Callable[..., Any]) -> None:
    url = await fresh_database()
    await schema.upgrade(url)
    assert set(Base.metadata.tables) <= await _tables(url)


def test_each_revision_downgrades_to_its_predecessor() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(schema.alembic_config("postgresql://"))
    revisions = list(script.walk_revisions())
    assert len(script.get_heads()) == 1, "migration history must not branch"
    for revision in revisions:
        assert revision.module.downgrade is not None


def test_wheel_ships_the_migrations(tmp_path: Path) -> None:
    # built from a copy of the tree: an in-place build leaves src/sage.egg-info behind
    (dist := tmp_path / "dist").mkdir()
    wheel = build_sage_wheel(Path(__file__).resolve().parents[2], dist, tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sage/migrations/env.py" in names
    assert "sage/migrations/script.py.mako" in names
    assert "sage/migrations/versions/0001_users.py" in names
