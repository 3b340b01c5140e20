"""Dependencies for routers: one `Annotated` alias per service, the current user, client identity.

Every router takes what it needs the same way (`market: MarketDep`, `user: CurrentUser`).
The dependencies are `async def` so FastAPI calls them on the event loop instead of hopping
to its thread pool for each one. The runtime is built by the composition root
(`sage.runtime`) in the app's lifespan; nothing here constructs a service.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from sage.alerts.service import PriceAlertService
from sage.auth.service import AuthService
from sage.chat.service import ChatService
from sage.errors import Unauthorized
from sage.market.catalog import SymbolCatalog
from sage.market.service import MarketService
from sage.notifications.inbox import NotificationService
from sage.notifications.verification import EmailVerifier
from sage.notifications.webpush import Subscriptions
from sage.portfolio.service import PortfolioService
from sage.runtime import Runtime, Services
from sage.settings import Settings
from sage.store.ratelimit import RateLimiter
from sage.store.user_tables import User

_bearer = HTTPBearer(auto_error=False, description="JWT access token from /api/v1/auth/login")


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_services(runtime: RuntimeDep) -> Services:
    return runtime.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def get_auth(runtime: RuntimeDep) -> AuthService:
    return runtime.auth


async def get_limiter(runtime: RuntimeDep) -> RateLimiter:
    return runtime.limiter


async def get_market(services: ServicesDep) -> MarketService:
    return services.market


async def get_catalog(services: ServicesDep) -> SymbolCatalog:
    return services.catalog


async def get_portfolio(services: ServicesDep) -> PortfolioService:
    return services.portfolio


async def get_price_alerts(services: ServicesDep) -> PriceAlertService:
    return services.price_alerts


async def get_chat(services: ServicesDep) -> ChatService:
    return services.chat


async def get_notifications(services: ServicesDep) -> NotificationService:
    return services.notifications


async def get_email_verifier(services: ServicesDep) -> EmailVerifier:
    return services.email_verifier


async def get_push_subscriptions(services: ServicesDep) -> Subscriptions:
    return services.push_subscriptions


SettingsDep = Annotated[Settings, Depends(get_settings)]
AuthDep = Annotated[AuthService, Depends(get_auth)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
MarketDep = Annotated[MarketService, Depends(get_market)]
CatalogDep = Annotated[SymbolCatalog, Depends(get_catalog)]
PortfolioDep = Annotated[PortfolioService, Depends(get_portfolio)]
PriceAlertsDep = Annotated[PriceAlertService, Depends(get_price_alerts)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
NotificationsDep = Annotated[NotificationService, Depends(get_notifications)]
EmailVerifierDep = Annotated[EmailVerifier, Depends(get_email_verifier)]
PushSubscriptionsDep = Annotated[Subscriptions, Depends(get_push_subscriptions)]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Missing bearer token")
    return credentials.credentials


async def bearer_token(credentials: Credentials) -> str:
    return _token(credentials)


BearerToken = Annotated[str, Depends(bearer_token)]


class _BearerUser(HTTPBearer):
    """The user of every authenticated route, as the bearer security scheme itself: FastAPI
    documents it as `HTTPBearer` (same scheme, same OpenAPI `security`), and solving it is one
    dependency with no sub-dependencies. Each level of FastAPI's dependency tree costs every
    request a recursion, a cache key and a scope check; this one runs on nearly every request.
    Same answers as `HTTPBearer(auto_error=False)` followed by `_token`: 401 "Missing bearer
    token" for a missing, empty or non-bearer Authorization header."""

    async def __call__(self, request: Request) -> User:  # type: ignore[override]
        scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthorized("Missing bearer token")
        runtime: Runtime = request.app.state.runtime
        user = await runtime.auth.user_from_access_token(credentials)
        runtime.services.active_users.record_active(user.id)  # daily active users (background, never blocks)
        return user


get_current_user = _BearerUser(
    auto_error=False, scheme_name="HTTPBearer", description="JWT access token from /api/v1/auth/login"
)
CurrentUser = Annotated[User, Depends(get_current_user)]


async def client_ip(request: Request, settings: SettingsDep) -> str:
    """The client's address. Each trusted proxy appends the address it received the request
    from to X-Forwarded-For, so with N trusted hops (SAGE_TRUSTED_PROXY_HOPS; 2 in production:
    CloudFront, then the ALB) the N-th entry from the end is the viewer. Earlier entries are
    client-supplied and cannot be trusted for rate limiting."""
    hops = settings.trusted_proxy_hops
    if hops > 0:
        forwarded = request.headers.get("x-forwarded-for", "")
        parts = [p.strip() for p in forwarded.split(",") if p.strip()]
        if len(parts) >= hops:
            return parts[-hops]
    return request.client.host if request.client else "unknown"


ClientIP = Annotated[str, Depends(client_ip)]
