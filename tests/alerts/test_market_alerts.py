"""Users' market price alerts: owner-scoped API, and each alert fires exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from sage.alerts.service import PriceAlertService
from sage.observability.metrics import Metrics
from sage.store.db import Database, create_engine
from tests.support.api import register_and_login


@dataclass(frozen=True)
class Price:
    symbol: str
    price: Decimal
    stale: bool = False
    diverged: bool = False
    as_of: datetime = datetime(2026, 11, 22, tzinfo=UTC)


class Prices:
    def __init__(self, *prices: Price) -> None:
        self.prices = {p.symbol: p for p in prices}

    async def consolidated(self, symbols: Sequence[str] | None = None) -> list[Price]:
        return [self.prices[s] for s in (symbols or self.prices) if s in self.prices]


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> httpx.Response:
    return await client.post("/api/v1/alerts", json=body, headers=headers)


async def test_alert_symbols_are_normalised(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    response = await _create(app_client, auth_headers, symbol="btc_usdt", condition="above", threshold="100000")
    assert response.status_code == 201
    assert response.json()["symbol"] == "BTC/USDT"
    listed = await app_client.get("/api/v1/alerts", headers=auth_headers)
    assert [a["symbol"] for a in listed.json()] == ["BTC/USDT"]


async def test_invalid_alerts_are_rejected_naming_the_field(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    bad_condition = await _create(app_client, auth_headers, symbol="BTC", condition="sideways", threshold="1")
    negative = await _create(app_client, auth_headers, symbol="BTC", condition="above", threshold="-5")
    assert bad_condition.status_code == 422 and bad_condition.json()["error"]["details"][0]["field"] == "condition"
    assert negative.status_code == 422 and negative.json()["error"]["details"][0]["field"] == "threshold"


async def test_another_users_alert_answers_404(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    created = await _create(app_client, auth_headers, symbol="ETH/USDT", condition="below", threshold="1000")
    other = await register_and_login(app_client)
    response = await app_client.delete(
        f"/api/v1/alerts/{created.json()['id']}", headers={"Authorization": f"Bearer {other['access_token']}"}
    )
    assert response.status_code == 404
    assert (await app_client.get("/api/v1/alerts", headers=auth_headers)).json()[0]["symbol"] == "ETH/USDT"


async def test_owner_can_delete_an_alert(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    created = await _create(app_client, auth_headers, symbol="SOL/USDT", condition="above", threshold="500")
    assert (await app_client.delete(f"/api/v1/alerts/{created.json()['id']}", headers=auth_headers)).status_code == 204
    assert (await app_client.get("/api/v1/alerts", headers=auth_headers)).json() == []


async def test_an_alert_fires_once_even_when_several_processes_evaluate(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], settings
) -> None:
    await _create(app_client, auth_headers, symbol="BTC/USDT", condition="above", threshold="90000")
    await _create(app_client, auth_headers, symbol="BTC/USDT", condition="below", threshold="50000")
    metrics = Metrics()
    services = [PriceAlertService(Database(create_engine(settings, settings.database_url)), metrics) for _ in range(4)]
    prices = Prices(Price("BTC/USDT", Decimal("91000")))
    results = await asyncio.gather(*(s.evaluate(prices) for s in services))
    fired = [f for batch in results for f in batch]
    assert [(f.condition, f.threshold, f.price) for f in fired] == [("above", Decimal("90000"), Decimal("91000"))]
    assert metrics.value("MarketAlertsSent") == 1
    assert await services[0].evaluate(prices) == []  # already fired
    listed = (await app_client.get("/api/v1/alerts", headers=auth_headers)).json()
    above = next(a for a in listed if a["condition"] == "above")
    assert above["triggered_price"] is not None and Decimal(above["triggered_price"]) == Decimal("91000")
    for service in services:
        await service.db.dispose()


async def test_stale_or_diverged_prices_never_fire_an_alert(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], settings
) -> None:
    await _create(app_client, auth_headers, symbol="BTC/USDT", condition="below", threshold="60000")
    await _create(app_client, auth_headers, symbol="ETH/USDT", condition="below", threshold="3000")
    service = PriceAlertService(Database(create_engine(settings, settings.database_url)), Metrics())
    prices = Prices(Price("BTC/USDT", Decimal("10"), stale=True), Price("ETH/USDT", Decimal("10"), diverged=True))
    assert await service.evaluate(prices) == []
    await service.db.dispose()
