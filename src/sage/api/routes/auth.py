"""Registration, login, refresh and logout. Login and register are rate-limited per client IP
and per email, so neither a botnet on one account nor one client on many gets far."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from sage.api.deps import AuthDep, BearerToken, ClientIP, LimiterDep, SettingsDep
from sage.api.openapi import error_responses
from sage.api.schemas import LoginRequest, RefreshRequest, RegisterRequest, TokenResponse, UserOut
from sage.auth.service import normalize_email
from sage.settings import Settings
from sage.store.ratelimit import Limit, RateLimiter

router = APIRouter(prefix="/auth", tags=["auth"])


async def _limit(limiter: RateLimiter, s: Settings, action: str, ip: str, email: str) -> None:
    window = s.auth_rate_limit_window_seconds
    await limiter.check(Limit(f"{action}:ip", s.auth_rate_limit_per_ip, window), ip)
    await limiter.check(Limit(f"{action}:email", s.auth_rate_limit_per_email, window), normalize_email(email))


@router.post(
    "/register", status_code=status.HTTP_201_CREATED, response_model=UserOut, responses=error_responses(409, 429)
)
async def register(
    body: RegisterRequest, auth: AuthDep, limiter: LimiterDep, settings: SettingsDep, ip: ClientIP
) -> UserOut:
    await _limit(limiter, settings, "register", ip, body.email)
    user = await auth.register(email=body.email, password=body.password, display_name=body.display_name)
    return UserOut.model_validate(user)


@router.post("/login", response_model=TokenResponse, responses=error_responses(401, 429))
async def login(
    body: LoginRequest, auth: AuthDep, limiter: LimiterDep, settings: SettingsDep, ip: ClientIP
) -> TokenResponse:
    await _limit(limiter, settings, "login", ip, body.email)
    _, pair = await auth.login(email=body.email, password=body.password)
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/refresh", response_model=TokenResponse, responses=error_responses(401))
async def refresh(body: RefreshRequest, auth: AuthDep) -> TokenResponse:
    pair = await auth.refresh(body.refresh_token)
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(token: BearerToken, auth: AuthDep) -> Response:
    """End this session: the bearer access token's refresh family is revoked (its refresh token
    no longer works) and the family's access tokens are refused from now on. Other sessions of
    the user (other logins) keep working. No body; a token already logged out is a 401."""
    await auth.logout(token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
