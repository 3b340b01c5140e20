"""Fixtures of the portfolio tests that work on the services below the API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from sage.settings import Settings
from sage.store.db import Database, create_engine


@pytest.fixture
async def db(settings: Settings, database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(settings, database_url))
    yield database
    await database.dispose()


@pytest.fixture
async def user_id(db: Database) -> uuid.UUID:
    """A user row (the ledger's portfolios belong to one)."""
    user = uuid.uuid4()
    async with db.session() as session:
        await session.execute(
            text("INSERT INTO users (id, email, password_hash) VALUES (:id, :email, 'x')"),
            {"id": user, "email": f"{user}@example.com"},
        )
        await session.commit()
    return user
