"""Argon2 password hashing (pwdlib). Verifying against a dummy hash for unknown users
makes login with an unknown email take as long as a wrong password."""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))
_DUMMY_HASH = _hasher.hash("sage-dummy-password-for-timing")


async def hash_password(password: str) -> str:
    # Argon2 takes tens of ms of CPU; off the event loop so other requests keep flowing.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-work check: an unknown user (hash None) still pays for one verification."""
    target = password_hash or _DUMMY_HASH
    ok = await asyncio.to_thread(_hasher.verify, password, target)
    return bool(ok) and password_hash is not None
