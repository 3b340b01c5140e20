"""Helpers for alert tests: a market whose prices a test moves, and the app's services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from sage.alerts.checker import check_once
from sage.runtime import Services
from tests.chat.support import FakeMarket, Quote, Reading


def market_with(**prices: str) -> FakeMarket:
    """BTC 97,250.50, ETH 3,456.78, SOL 187.65 unless given (`BTC="100000"`); Fear & Greed 50, fresh."""
    market = FakeMarket(reading=Reading(50, "Neutral", as_of=datetime.now(UTC)))
    for base, price in prices.items():
        move(market, f"{base}/USDT", price)
    return market


def move(market: FakeMarket, symbol: str, price: str, *, stale: bool = False, diverged: bool = False) -> None:
    market.quotes[symbol] = Quote(symbol, Decimal(price), None, stale=stale, diverged=diverged)


def fear_greed(market: FakeMarket, value: int) -> None:
    market.reading = Reading(value, "x", as_of=datetime.now(UTC))


def services(client: httpx.AsyncClient) -> Services:
    return client.app.state.runtime.services  # type: ignore[attr-defined,no-any-return]


async def tick(client: httpx.AsyncClient) -> int:
    """One evaluation pass of the running app; the number of alerts fired."""
    s = services(client)
    return await check_once(s.price_alerts, s.notifications.hub)


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/alerts", json=body, headers=headers)


async def inbox(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/notifications", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def user_id_of(token: str) -> uuid.UUID:
    import jwt

    return uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sub"])
