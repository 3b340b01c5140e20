"""Registration, login, token refresh and logout.

Revocation lives in PostgreSQL alone: a logout (or a refresh token presented twice) revokes the
refresh family, and every authenticated request reads the user and "was this family revoked?"
in the same single statement (`read_user_for_access`). So a logout holds at once on every task,
with no per-request cache round trip and nothing to lose in a Valkey outage.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sage.auth.passwords import hash_password, verify_password
from sage.auth.tokens import ACCESS, REFRESH, TokenClaims, TokenCodec
from sage.errors import Unauthorized
from sage.store import users as repo
from sage.store.db import Database
from sage.store.user_tables import User


def normalize_email(email: str) -> str:
    """Trim and lower-case the whole address. Mailbox names are case-sensitive in theory,
    but no mainstream provider treats them so, and two accounts differing only in case
    are a support incident waiting to happen."""
    return email.strip().lower()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


class AuthService:
    def __init__(self, db: Database, codec: TokenCodec) -> None:
        self.db = db
        self.codec = codec

    async def register(self, *, email: str, password: str, display_name: str | None) -> User:
        password_hash = await hash_password(password)
        async with self.db.session() as session:
            return await repo.create_user(
                session, email=normalize_email(email), password_hash=password_hash, display_name=display_name
            )

    async def login(self, *, email: str, password: str) -> tuple[User, TokenPair]:
        async with self.db.session() as session:
            user = await repo.get_user_by_email(session, email=normalize_email(email))
        # verify_password always hashes once, so unknown emails cost the same as wrong passwords
        if not await verify_password(password, user.password_hash if user else None) or user is None:
            raise Unauthorized("Incorrect email or password")
        async with self.db.session() as session:
            await repo.touch_login(session, user_id=user.id)
        return user, await self._issue(user.id, family=uuid.uuid4())

    async def refresh(self, refresh_token: str) -> TokenPair:
        claims = self.codec.decode(refresh_token, expected_type=REFRESH)
        assert claims.jti is not None and claims.family is not None
        async with self.db.session() as session, session.begin():
            row, first_use = await repo.consume_refresh_token(session, jti=claims.jti)
            if row is None or row.user_id != claims.user_id:
                raise Unauthorized("Invalid token")
            ended = not first_use and row.revoked_at is not None  # logged out (or revoked) earlier
            if not first_use:
                # A refresh token presented twice was copied: end every session of that family.
                await repo.revoke_family(session, family=claims.family)
                reused = True
            else:
                reused = False
        if reused:
            if ended:
                raise Unauthorized("This session has ended; please log in again")
            raise Unauthorized("Refresh token was already used; please log in again")
        async with self.db.session() as session:
            if await repo.get_user(session, user_id=claims.user_id) is None:
                raise Unauthorized("Invalid token")
        return await self._issue(claims.user_id, family=claims.family)

    async def user_from_access_token(self, token: str) -> User:
        return (await self._authenticate(token))[0]

    async def logout(self, access_token: str) -> None:
        """End the session the access token belongs to: its refresh family is revoked in
        PostgreSQL, so no refresh works again and its access tokens are refused from the next
        request on (`_authenticate`). The user's other sessions (other families) are untouched."""
        _, claims = await self._authenticate(access_token)
        assert claims.family is not None
        async with self.db.session() as session, session.begin():
            await repo.revoke_family(session, family=claims.family)

    async def _authenticate(self, token: str) -> tuple[User, TokenClaims]:
        claims = self.codec.decode(token, expected_type=ACCESS)
        assert claims.family is not None
        async with self.db.driver_connection() as conn:  # every authenticated request: one round trip
            user, revoked = await repo.read_user_for_access(conn, user_id=claims.user_id, family=claims.family)
        if revoked:
            raise Unauthorized("Token has been revoked; please log in again")
        if user is None:
            raise Unauthorized("Invalid token")
        return user, claims

    async def _issue(self, user_id: uuid.UUID, *, family: uuid.UUID) -> TokenPair:
        jti = uuid.uuid4()
        async with self.db.session() as session:
            await repo.store_refresh_token(
                session,
                jti=jti,
                user_id=user_id,
                family=family,
                expires_at=datetime.now(UTC) + timedelta(seconds=self.codec.refresh_ttl),
            )
        return TokenPair(
            access_token=self.codec.access_token(user_id, family=family),
            refresh_token=self.codec.refresh_token(user_id, jti, family),
            expires_in=self.codec.access_ttl,
        )
