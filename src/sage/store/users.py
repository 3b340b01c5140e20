"""User and refresh-token persistence (keyword-only functions, one session each call)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.base import manager_of_class

from sage.errors import Conflict
from sage.store.user_tables import RefreshToken, User


async def get_user(session: AsyncSession, *, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


# One statement for the authentication of every request: the user row and whether the token's
# refresh family was revoked (logout, detected reuse). The one-row `FROM (SELECT 1)` keeps the
# revocation answer when the user is gone. The family probe uses the partial index of revoked
# rows (migration 0011), so a long session's many rotated rows are never scanned.
_USER_FOR_ACCESS = (
    "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $2 AND revoked_at IS NOT NULL) AS family_revoked, "
    + ", ".join(f"u.{c.name}" for c in User.__table__.c)
    + " FROM (SELECT 1) AS one LEFT JOIN users AS u ON u.id = $1"
)


async def read_user_for_access(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, family: uuid.UUID
) -> tuple[User | None, bool]:
    """(the user by primary key, whether `family` was revoked) in one round trip on the
    driver's connection (`Database.driver_connection`); asyncpg caches the prepared statement
    per connection. The user is a detached `User`, as `get_user`'s is once its session closes."""
    row = await conn.fetchrow(_USER_FOR_ACCESS, user_id, family)
    assert row is not None  # the one-row FROM always yields a row
    revoked = bool(row["family_revoked"])
    if row["id"] is None:
        return None, revoked
    # The instance's attribute dict filled directly, as SQLAlchemy's own loading does: a plain
    # `User(**row)` runs the declarative constructor and an attribute-set event per column
    # (~10x the cost, a visible share of every authenticated request). The object is transient
    # and unmodified; reading its columns is plain attribute access.
    user = _new_user()
    user.__dict__.update({name: row[name] for name in _USER_COLUMNS})
    return user, revoked


_USER_COLUMNS = tuple(c.name for c in User.__table__.c)
_new_user = manager_of_class(User).new_instance


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def create_user(session: AsyncSession, *, email: str, password_hash: str, display_name: str | None) -> User:
    user = User(id=uuid.uuid4(), email=email, password_hash=password_hash, display_name=display_name)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("An account with this email already exists", details={"field": "email"}) from exc
    return user


async def touch_login(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    await session.execute(update(User).where(User.id == user_id).values(last_login_at=datetime.now(UTC)))
    await session.commit()


async def store_refresh_token(
    session: AsyncSession, *, jti: uuid.UUID, user_id: uuid.UUID, family: uuid.UUID, expires_at: datetime
) -> None:
    session.add(RefreshToken(id=jti, user_id=user_id, family_id=family, expires_at=expires_at))
    await session.commit()


async def consume_refresh_token(session: AsyncSession, *, jti: uuid.UUID) -> tuple[RefreshToken | None, bool]:
    """Mark a refresh token used. Returns (row, first_use); the row lock makes two
    concurrent refreshes with the same token see exactly one first use."""
    result = await session.execute(select(RefreshToken).where(RefreshToken.id == jti).with_for_update())
    row = result.scalar_one_or_none()
    if row is None:
        return None, False
    if row.used_at is not None or row.revoked_at is not None:
        return row, False
    row.used_at = datetime.now(UTC)
    return row, True


async def revoke_family(session: AsyncSession, *, family: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
