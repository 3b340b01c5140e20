"""Alembic environment: async engine, one transaction per migration.

The URL comes from `config.attributes["url"]` (set by sage.ops.migrate), never from
the environment directly. `transaction_per_migration` keeps a failed revision from
leaving the schema half-way: PostgreSQL DDL is transactional, so the failed
revision rolls back and the database stays at the last good one.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from sage.store.base import Base
from sage.store.db import asyncpg_url

config = context.config
target_metadata = Base.metadata


def _timeouts() -> tuple[str, str]:
    return (
        str(config.attributes.get("lock_timeout", "5s")),
        str(config.attributes.get("statement_timeout", "10min")),
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.attributes.get("url", "postgresql://"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    lock_timeout, statement_timeout = _timeouts()
    connection.execute(text(f"SET lock_timeout = '{lock_timeout}'"))
    connection.execute(text(f"SET statement_timeout = '{statement_timeout}'"))
    connection.commit()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_async_engine(asyncpg_url(config.attributes["url"]), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
