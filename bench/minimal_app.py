"""The API baseline: a minimal FastAPI + asyncpg app doing what Sage's `/users/me` must do.

    uvicorn bench.minimal_app:app   (MINIMAL_DATABASE_URL, MINIMAL_JWT_SECRET)

`GET /health` answers `{"status":"ok"}`; `GET /api/v1/users/me` decodes the bearer JWT
(PyJWT, HS256, the same issuer and required claims as Sage) and reads the user by primary
key from Sage's own `users` table through a plain asyncpg pool of Sage's size. No
middleware, no ORM, no logging: the floor Sage's stack is compared against.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import jwt
from fastapi import FastAPI, Header, HTTPException

from sage.auth.tokens import ALGORITHM, ISSUER

SECRET = os.environ.get("MINIMAL_JWT_SECRET", "")
USER_BY_ID = "SELECT id, email, display_name, created_at FROM users WHERE id = $1"
pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global pool
    url = os.environ["MINIMAL_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=7)  # Sage's pool_size + max_overflow
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/users/me")
async def me(authorization: str = Header(default="")) -> dict[str, Any]:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Missing bearer token")
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["sub", "exp", "iat", "typ"]}
        )
    except jwt.PyJWTError as exc:
        raise HTTPException(401, "Invalid token") from exc
    if claims.get("typ") != "access":
        raise HTTPException(401, "Invalid token type")
    assert pool is not None
    row = await pool.fetchrow(USER_BY_ID, uuid.UUID(claims["sub"]))
    if row is None:
        raise HTTPException(401, "Invalid token")
    return {
        "id": str(row["id"]),
        "email": row["email"],
        "display_name": row["display_name"],
        "created_at": row["created_at"].isoformat(),
    }
