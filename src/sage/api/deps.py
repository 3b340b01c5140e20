"""Dependencies for routers: the runtime, the current user, client identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sage.errors import Unauthorized
from sage.observability.active_users import record_active
from sage.runtime import Runtime
from sage.store.tables import User

_bearer = HTTPBearer(auto_error=False, description="JWT access token from /api/v1/auth/login")


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Missing bearer token")
    return credentials.credentials


BearerToken = Annotated[str, Depends(bearer_token)]


async def get_current_user(runtime: RuntimeDep, token: BearerToken) -> User:
    user = await runtime.auth.user_from_access_token(token)
    record_active(runtime, user.id)  # daily active users (background, never blocks)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def client_ip(request: Request, runtime: RuntimeDep) -> str:
    """The client's address. Behind the ALB (SAGE_TRUSTED_PROXY_HOPS=1) the last
    X-Forwarded-For entry is the one the ALB appended; earlier entries are client-supplied
    and cannot be trusted for rate limiting."""
    hops = runtime.settings.trusted_proxy_hops
    if hops > 0:
        forwarded = request.headers.get("x-forwarded-for", "")
        parts = [p.strip() for p in forwarded.split(",") if p.strip()]
        if len(parts) >= hops:
            return parts[-hops]
    return request.client.host if request.client else "unknown"


ClientIP = Annotated[str, Depends(client_ip)]
