"""The shadow portfolio: positions per user and their value at consolidated prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sage.portfolio.service import summarize
from tests.chat.support import FakeMarket, Quote
from tests.portfolio.support import Position as PortfolioPosition
from tests.support.api import register_and_login


@pytest.fixture
def market_reader() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
def market(app_client, market_reader: FakeMarket) -> FakeMarket:
    return market_reader


def test_the_summary_values_positions_and_leaves_unpriced_ones_out_of_the_totals():
    now = datetime(2026, 11, 22, tzinfo=UTC)
    positions = [
        PortfolioPosition(symbol="BTC/USDT", quantity=Decimal("0.5"), average_cost=Decimal("60000")),
        PortfolioPosition(symbol="ETH/USDT", quantity=Decimal("2"), average_cost=Decimal("4000")),
        PortfolioPosition(symbol="XRP/USDT", quantity=Decimal("100"), average_cost=Decimal("0.5")),
    ]
    quotes = {
        "BTC/USDT": Quote("BTC/USDT", Decimal("100000"), Decimal("1")),
        "ETH/USDT": Quote("ETH/USDT", Decimal("3000"), Decimal("-1")),
    }
    summary = summarize(positions, quotes, now)
    btc, eth, xrp = summary.positions
    assert (btc.value, btc.pnl, btc.pnl_pct) == (
        Decimal("50000.0"),
        Decimal("20000.0"),
        Decimal("66.66666666666666666666666667"),
    )
    assert (eth.value, eth.pnl) == (Decimal("6000"), Decimal("-2000"))
    assert xrp.value is None and xrp.cost == Decimal("50.0")
    assert summary.total_value == Decimal("56000.0") and summary.total_cost == Decimal("38000")
    assert summary.total_pnl == Decimal("18000.0")
    assert not summary.priced_all
    assert btc.weight_pct + eth.weight_pct == 100


async def test_positions_are_put_read_and_deleted(app_client, auth_headers, market):
    put = await app_client.put(
        "/api/v1/portfolio/positions/btc-usdt", json={"quantity": "0.5", "average_cost": "60000"}, headers=auth_headers
    )
    assert put.status_code == 200
    assert put.json()["symbol"] == "BTC/USDT" and Decimal(put.json()["quantity"]) == Decimal("0.5")
    replaced = await app_client.put(
        "/api/v1/portfolio/positions/BTCUSDT", json={"quantity": 1, "average_cost": 65000}, headers=auth_headers
    )
    assert Decimal(replaced.json()["quantity"]) == 1
    listed = (await app_client.get("/api/v1/portfolio/positions", headers=auth_headers)).json()
    # "set holding": the extra 0.5 is bought at 65,000, so the average is 62,500
    assert [(p["symbol"], Decimal(p["average_cost"])) for p in listed] == [("BTC/USDT", Decimal(62500))]
    one = await app_client.get("/api/v1/portfolio/positions/BTC/USDT", headers=auth_headers)
    assert one.status_code == 200
    deleted = await app_client.delete("/api/v1/portfolio/positions/btc", headers=auth_headers)
    assert deleted.status_code == 204
    assert (await app_client.get("/api/v1/portfolio/positions", headers=auth_headers)).json() == []
    again = await app_client.delete("/api/v1/portfolio/positions/btc", headers=auth_headers)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


async def test_bad_positions_are_422(app_client, auth_headers, market):
    for body in (
        {"quantity": 0, "average_cost": 1},
        {"quantity": -1, "average_cost": 1},
        {"quantity": 1, "average_cost": -5},
        {"quantity": "lots", "average_cost": 1},
        {"quantity": 1},
        {"quantity": 1, "average_cost": 1, "leverage": 10},
        {"quantity": "99999999999999999999", "average_cost": "99999999999999999999"},  # no 500 on overflow
    ):
        response = await app_client.put("/api/v1/portfolio/positions/BTC", json=body, headers=auth_headers)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "validation_error"
    bad_symbol = await app_client.put(
        "/api/v1/portfolio/positions/not!a!symbol", json={"quantity": 1, "average_cost": 1}, headers=auth_headers
    )
    assert bad_symbol.status_code == 422


async def test_the_summary_uses_consolidated_prices(app_client, auth_headers, market):
    await app_client.put(
        "/api/v1/portfolio/positions/BTC", json={"quantity": "0.5", "average_cost": "60000"}, headers=auth_headers
    )
    await app_client.put(
        "/api/v1/portfolio/positions/ETH", json={"quantity": "2", "average_cost": "4000"}, headers=auth_headers
    )
    summary = (await app_client.get("/api/v1/portfolio/summary", headers=auth_headers)).json()
    assert Decimal(summary["total_value"]) == Decimal("55538.81")
    assert Decimal(summary["total_pnl"]) == Decimal("17538.81")
    assert summary["priced_all"] is True
    assert market.calls[-1] == ["BTC/USDT", "ETH/USDT"]


async def test_an_empty_portfolio_has_no_summary(app_client, auth_headers, market):
    response = await app_client.get("/api/v1/portfolio/summary", headers=auth_headers)
    assert response.status_code == 200 and response.json() is None


async def test_a_market_outage_still_lists_the_positions_unpriced(app_client, auth_headers, market):
    await app_client.put(
        "/api/v1/portfolio/positions/BTC", json={"quantity": 1, "average_cost": 1}, headers=auth_headers
    )
    market.fail = True
    summary = (await app_client.get("/api/v1/portfolio/summary", headers=auth_headers)).json()
    assert summary["priced_all"] is False and summary["positions"][0]["value"] is None


async def test_users_never_see_each_others_positions(app_client, auth_headers, market):
    await app_client.put(
        "/api/v1/portfolio/positions/BTC", json={"quantity": 1, "average_cost": 1}, headers=auth_headers
    )
    tokens = await register_and_login(app_client)
    other = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await app_client.get("/api/v1/portfolio/positions", headers=other)).json() == []
    assert (await app_client.delete("/api/v1/portfolio/positions/BTC", headers=other)).status_code == 404
    assert len((await app_client.get("/api/v1/portfolio/positions", headers=auth_headers)).json()) == 1


async def test_the_portfolio_needs_a_login(app_client):
    assert (await app_client.get("/api/v1/portfolio/positions")).status_code == 401
