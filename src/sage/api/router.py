"""The /api/v1 router: each domain's routes are included here, one line each."""

from __future__ import annotations

from fastapi import APIRouter

from sage.api.routes import alerts, auth, chats, market, notifications, portfolio, portfolios, push, users

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(alerts.router)
api_router.include_router(market.router)
api_router.include_router(chats.router)
api_router.include_router(chats.usage_router)
api_router.include_router(portfolio.router)
api_router.include_router(portfolios.router)
api_router.include_router(notifications.router)
api_router.include_router(notifications.settings_router)
api_router.include_router(push.router)
