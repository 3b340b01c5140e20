"""Access tokens denied before they expire: on logout, and when a refresh family is revoked.

Access tokens are stateless JWTs that live SAGE_JWT_ACCESS_TTL_SECONDS; revoking a refresh
family in PostgreSQL alone would leave its access tokens working until then. The denylist is
a set of short-lived Valkey keys, one per denied token `jti` and one per denied family, each
expiring when no token it names could still be valid, so it never grows past the tokens
issued in one access lifetime.

Fail-over follows the rate limits' rule: every denial is also kept in this process, so a
Valkey outage never re-admits a token this process denied; and while Valkey cannot be asked,
`is_denied` says so (None) and the caller consults the families revoked in PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from sage.store.cache import Cache, CacheUnavailable


class AccessDenylist:
    def __init__(self, cache: Cache, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = cache
        self._clock = clock
        self._local: dict[str, float] = {}  # key -> expiry (monotonic): this process's denials

    def _token_key(self, jti: uuid.UUID) -> str:
        return self.cache.key("deny", "jti", jti)

    def _family_key(self, family: uuid.UUID) -> str:
        return self.cache.key("deny", "fam", family)

    async def deny(
        self, *, family: uuid.UUID, family_ttl: float, jti: uuid.UUID | None = None, jti_ttl: float = 0
    ) -> None:
        """Deny every access token of `family` (for `family_ttl` s: the longest any of them can
        still live) and, when given, the one token `jti` (for its remaining lifetime)."""
        entries = {self._family_key(family): max(1.0, family_ttl)}
        if jti is not None:
            entries[self._token_key(jti)] = max(1.0, jti_ttl)
        now = self._clock()
        for key in [k for k, expires in self._local.items() if expires <= now]:
            del self._local[key]  # denials are rare: purging here keeps the set small
        for key, ttl in entries.items():
            self._local[key] = now + ttl
            try:
                await self.cache.backend.set(key, b"1", ttl)
            except CacheUnavailable as exc:
                self.cache.report_failure("access_denylist", exc)

    async def is_denied(self, jti: uuid.UUID, family: uuid.UUID) -> bool | None:
        """True when the token or its family is denied; None when Valkey could not be asked
        and this process has no denial of its own (the caller must look elsewhere)."""
        keys = [self._token_key(jti), self._family_key(family)]
        now = self._clock()
        if any(self._local.get(key, 0.0) > now for key in keys):
            return True
        try:
            values = await self.cache.backend.get_many(keys)
        except CacheUnavailable as exc:
            self.cache.report_failure("access_denylist", exc)
            return None
        return any(value is not None for value in values)
