"""JWT access tokens (PyJWT, HS256, short expiry, sub = user id) and refresh tokens.

Refresh tokens are JWTs too, with their own `typ`, a `jti` stored in PostgreSQL and a
`fam` (family) id: each refresh rotates the token, and a reused one revokes the family.
Access tokens carry a `jti` and the `fam` of the refresh family they were issued with, so a
logout (or a detected reuse) can refuse them before they expire (sage.auth.service).

A client sends the same access token with every request for its whole lifetime, so the codec
keeps the claims of access tokens it has verified (bounded, oldest out first): the same token
string again skips the signature check and JSON parsing but never the expiry check. The
verdict of a signature over the exact same bytes with the same secret cannot change; a token
that differs in one byte is a different key and goes through PyJWT.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from sage.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "sage"
ACCESS = "access"
REFRESH = "refresh"
VERIFIED_ACCESS_TOKENS = 4096  # per process: the tokens of the users active in one access lifetime


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    token_type: str
    jti: uuid.UUID | None
    family: uuid.UUID | None
    expires_at: int


class TokenCodec:
    def __init__(
        self,
        secret: str,
        *,
        access_ttl: int,
        refresh_ttl: int,
        leeway: int = 5,
        clock: Callable[[], float] = time.time,
        verified_limit: int = VERIFIED_ACCESS_TOKENS,
    ) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.leeway = leeway
        self._clock = clock  # for the expiry of remembered tokens (PyJWT reads its own clock)
        self._verified: dict[str, TokenClaims] = {}  # access token -> its claims, insertion-ordered
        self._verified_limit = verified_limit

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def access_token(
        self,
        user_id: uuid.UUID,
        *,
        family: uuid.UUID | None = None,
        jti: uuid.UUID | None = None,
        now: float | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        return self._encode(
            {
                "sub": str(user_id),
                "typ": ACCESS,
                "iss": ISSUER,
                "iat": issued,
                "exp": issued + self.access_ttl,
                "jti": str(jti or uuid.uuid4()),
                "fam": str(family or uuid.uuid4()),
            }
        )

    def refresh_token(self, user_id: uuid.UUID, jti: uuid.UUID, family: uuid.UUID, *, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        return self._encode(
            {
                "sub": str(user_id),
                "typ": REFRESH,
                "iss": ISSUER,
                "iat": issued,
                "exp": issued + self.refresh_ttl,
                "jti": str(jti),
                "fam": str(family),
            }
        )

    def decode(self, token: str, *, expected_type: str) -> TokenClaims:
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at <= self._clock() - self.leeway:  # PyJWT's own rule for `exp`
                del self._verified[token]
                raise Unauthorized("Token has expired")
            if known.token_type != expected_type:
                raise Unauthorized("Invalid token type")
            return known
        claims = self._verify(token, expected_type=expected_type)
        if expected_type == ACCESS:
            if len(self._verified) >= self._verified_limit:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        return claims

    def _verify(self, token: str, *, expected_type: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # never trust the token's own "alg" (none / RS confusion)
                issuer=ISSUER,
                leeway=self.leeway,
                options={"require": ["sub", "exp", "iat", "typ"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("Token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("Invalid token") from exc
        if claims.get("typ") != expected_type:
            raise Unauthorized("Invalid token type")
        try:
            user_id = uuid.UUID(str(claims["sub"]))
            jti = uuid.UUID(claims["jti"]) if "jti" in claims else None
            family = uuid.UUID(claims["fam"]) if "fam" in claims else None
        except (ValueError, TypeError) as exc:
            raise Unauthorized("Invalid token") from exc
        if jti is None or family is None:  # both kinds carry them (older access tokens did not: refresh)
            raise Unauthorized("Invalid token")
        return TokenClaims(user_id, expected_type, jti, family, int(claims["exp"]))
