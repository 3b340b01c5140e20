"""The /api/v1 routes: each domain's router is included here, one line each."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from sage.api.routes import alerts, auth, chats, market, notifications, portfolio, portfolios, push, users

API_PREFIX = "/api/v1"

API_ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    users.router,
    alerts.router,
    market.router,
    chats.router,
    chats.usage_router,
    portfolio.router,
    portfolios.router,
    notifications.router,
    notifications.settings_router,
    push.router,
)


def include_api(app: FastAPI) -> None:
    """Each domain router straight into the app under `API_PREFIX`, not through an
    intermediate `/api/v1` router: FastAPI (>= 0.16x) keeps included routers nested and, on
    every request, walks each level's candidates and recomputes its routes version, so a
    level less is less work per request. Same paths, order and OpenAPI document."""
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
