"""Portfolio alerts: a portfolio's value above / below a level, a drawdown from its peak.

Each test's portfolio starts with 10,000 USDT and buys 1 SOL at 100 without a fee, so its
value is 9,900 + the SOL price (187.65 in `market_with()`: 10,087.65).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from sage.alerts.evaluation import Readings
from sage.alerts.service import PriceAlertService
from sage.chat.tools.alerts import AlertTools, CreateAlertArgs
from sage.chat.tools.base import ToolCaller, ToolError
from sage.market.catalog import ListedSymbols, SymbolCatalog
from sage.observability.metrics import Metrics
from sage.settings import Settings
from sage.store.db import Database, create_engine
from tests.alerts.support import create, inbox, move, services, tick, user_id_of
from tests.chat.support import FakeMarket
from tests.support.api import register_and_login


async def new_portfolio(client: httpx.AsyncClient, headers: dict[str, str], name: str = "Growth") -> str:
    created = await client.post("/api/v1/portfolios", json={"name": name, "starting_cash": "10000"}, headers=headers)
    assert created.status_code == 201, created.text
    pid = str(created.json()["id"])
    bought = await client.post(
        f"/api/v1/portfolios/{pid}/transactions",
        json={"kind": "buy", "symbol": "SOL/USDT", "quantity": "1", "price": "100", "fee": "0"},
        headers=headers,
    )
    assert bought.status_code == 201, bought.text
    return pid


async def other_user(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await register_and_login(client))['access_token']}"}


def problems(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


async def test_a_value_alert_fires_once_when_the_portfolio_crosses_it(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    pid = await new_portfolio(app_client, auth_headers)
    created = await create(app_client, auth_headers, kind="portfolio_value_above", portfolio_id=pid, threshold="10100")
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["portfolio_id"], body["symbol"], body["already_triggered"]) == (
        "portfolio_value_above",
        pid,
        None,
        False,
    )
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "300", stale=True)  # a stale price neither fires nor counts
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "250")
    assert await tick(app_client) == 1
    [note] = await inbox(app_client, auth_headers)
    assert note["title"] == "Alert: Portfolio Growth value above 10,100 USDT"
    assert note["body"] == "Portfolio Growth value above 10,100 USDT: now 10,150 USDT."
    assert note["data"]["portfolio_id"] == pid
    listed = (await app_client.get(f"/api/v1/alerts/{body['id']}", headers=auth_headers)).json()
    assert (listed["status"], listed["triggered_price"], listed["fire_count"]) == ("triggered", "10150", 1)
    move(market_reader, "SOL/USDT", "150")
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "260")
    assert await tick(app_client) == 0  # once


async def test_a_value_alert_already_true_at_creation_waits_for_a_crossing(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    pid = await new_portfolio(app_client, auth_headers)
    created = (
        await create(app_client, auth_headers, kind="portfolio_value_below", portfolio_id=pid, threshold="10100")
    ).json()
    assert created["already_triggered"] is True
    assert "already true" in created["message"] and "10,100" in created["message"]
    assert await tick(app_client) == 0  # not fired silently
    move(market_reader, "SOL/USDT", "250")  # 10,150: back above, armed
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "150", diverged=True)  # exchanges disagree: not a reading
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "150")  # 10,050
    assert await tick(app_client) == 1
    [note] = await inbox(app_client, auth_headers)
    assert note["body"] == "Portfolio Growth value below 10,100 USDT: now 10,050 USDT."


async def test_a_drawdown_alert_measures_from_the_peak_since_it_was_created(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    pid = await new_portfolio(app_client, auth_headers)
    created = (
        await create(app_client, auth_headers, kind="portfolio_return_below", portfolio_id=pid, threshold="1")
    ).json()
    assert created["already_triggered"] is False  # at creation the value is its own peak
    move(market_reader, "SOL/USDT", "300")  # 10,200: the new peak
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "200")  # 10,100: 0.98 % below the peak, above the creation value
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "197")  # 10,097: 1.01 % below the peak of 10,200
    assert await tick(app_client) == 1
    [note] = await inbox(app_client, auth_headers)
    assert note["title"] == "Alert: Portfolio Growth 1 % below its peak"
    assert note["body"] == ("Portfolio Growth 1 % below its peak: now 10,097 USDT, 1.01 % below its peak of 10,200.")
    assert await tick(app_client) == 0


async def test_a_repeating_drawdown_alert_rearms_on_a_new_peak(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    pid = await new_portfolio(app_client, auth_headers)
    await create(
        app_client,
        auth_headers,
        kind="portfolio_return_below",
        portfolio_id=pid,
        threshold="1",
        repeat="every",
        cooldown_seconds=60,
    )
    move(market_reader, "SOL/USDT", "80")  # 9,980: 1.07 % below the peak of 10,087.65
    assert await tick(app_client) == 1
    async with services(app_client).price_alerts.db.session() as session:  # the cooldown passes
        await session.execute(text("UPDATE market_alerts SET triggered_at = triggered_at - interval '2 hours'"))
        await session.commit()
    assert await tick(app_client) == 0  # still down: no new crossing
    move(market_reader, "SOL/USDT", "300")  # 10,200: a new peak, armed again
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "190")  # 10,090: above the first peak, 1.08 % below the new one
    assert await tick(app_client) == 1
    bodies = [n["body"] for n in await inbox(app_client, auth_headers)]
    assert "now 10,090 USDT, 1.08 % below its peak of 10,200." in bodies[0]


async def test_portfolio_alerts_of_two_users_stay_apart(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    pid = await new_portfolio(app_client, auth_headers)
    bob = await other_user(app_client)
    bobs = await new_portfolio(app_client, bob, name="Bob")
    # Bob cannot watch Alice's portfolio (nor learn whether it exists: the same answer as unknown)
    for foreign in (pid, str(uuid.uuid4())):
        refused = await create(app_client, bob, kind="portfolio_value_above", portfolio_id=foreign, threshold="10100")
        assert problems(refused) == ["portfolio_id"]
    assert "not one of your portfolios" in refused.json()["error"]["details"][0]["message"]
    await create(app_client, auth_headers, kind="portfolio_value_above", portfolio_id=pid, threshold="10100")
    await create(app_client, bob, kind="portfolio_value_above", portfolio_id=bobs, threshold="20000")
    move(market_reader, "SOL/USDT", "250")
    assert await tick(app_client) == 1  # Alice's; Bob's portfolio is worth 10,150 too, below his 20,000
    assert len(await inbox(app_client, auth_headers)) == 1
    assert await inbox(app_client, bob) == []
    alices = (await app_client.get("/api/v1/alerts", headers=auth_headers)).json()
    assert [a["portfolio_id"] for a in alices] == [pid]
    # deleting a portfolio deletes its alerts
    assert (await app_client.delete(f"/api/v1/portfolios/{bobs}", headers=bob)).status_code == 204
    assert (await app_client.get("/api/v1/alerts", headers=bob)).json() == []


async def test_bad_portfolio_alert_requests_are_422_naming_the_field(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    pid = await new_portfolio(app_client, auth_headers)
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"kind": "portfolio_value_above", "threshold": "1"}, ["portfolio_id"]),
        ({"kind": "price_above", "symbol": "BTC/USDT", "portfolio_id": pid, "threshold": "1"}, ["portfolio_id"]),
        ({"kind": "portfolio_value_below", "symbol": "BTC/USDT", "portfolio_id": pid, "threshold": "1"}, ["symbol"]),
        ({"kind": "portfolio_return_below", "portfolio_id": pid, "threshold": "100"}, ["threshold"]),
        ({"kind": "portfolio_value_above", "portfolio_id": "not-a-uuid", "threshold": "1"}, ["portfolio_id"]),
        ({"kind": "portfolio_value_above", "portfolio_id": pid, "threshold": "1", "window": "1h"}, ["window"]),
    ]
    for body, fields in cases:
        assert problems(await create(app_client, auth_headers, **body)) == fields, body
    assert (await app_client.get("/api/v1/alerts", headers=auth_headers)).json() == []


async def test_a_portfolio_alert_fires_once_when_several_processes_evaluate(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket, settings: Settings
) -> None:
    pid = await new_portfolio(app_client, auth_headers)
    await create(app_client, auth_headers, kind="portfolio_value_above", portfolio_id=pid, threshold="10100")
    metrics = Metrics()
    dbs = [Database(create_engine(settings, settings.database_url)) for _ in range(4)]
    portfolios = services(app_client).portfolio
    processes = [
        PriceAlertService(
            db,
            metrics,
            market_reader,
            ListedSymbols(SymbolCatalog(db, configured=["BTC/USDT"], exchanges=["binance"])),
            portfolios=portfolios,
        )
        for db in dbs
    ]
    readings = Readings({}, portfolios={uuid.UUID(pid): Decimal("10150")})
    results = await asyncio.gather(*(p.evaluate(readings) for p in processes))
    assert [(f.kind, f.value) for r in results for f in r.fired] == [("portfolio_value_above", Decimal("10150"))]
    assert metrics.value("MarketAlertsSent") == 1
    assert len(await inbox(app_client, auth_headers)) == 1
    for db in dbs:
        await db.dispose()


async def test_the_chat_tool_creates_portfolio_alerts_through_the_same_checks(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    pid = await new_portfolio(app_client, auth_headers)
    token = auth_headers["Authorization"].removeprefix("Bearer ")
    tools = AlertTools(services(app_client).price_alerts)
    alice = ToolCaller(user_id=user_id_of(token), now=datetime.now(UTC))
    args = CreateAlertArgs(kind="portfolio_return_below", portfolio_id=uuid.UUID(pid), threshold=Decimal(10))
    out = await tools.create_alert(args, alice)
    assert (out.data["created"]["kind"], out.data["created"]["portfolio_id"]) == ("portfolio_return_below", pid)
    assert out.summary == f"alert: portfolio {pid} portfolio_return_below 10"
    listed = (await app_client.get("/api/v1/alerts", headers=auth_headers)).json()
    assert [(a["kind"], a["portfolio_id"], a["threshold"]) for a in listed] == [("portfolio_return_below", pid, "10")]
    bob_headers = await other_user(app_client)
    bob_id = (await app_client.get("/api/v1/users/me", headers=bob_headers)).json()["id"]
    bob = ToolCaller(user_id=uuid.UUID(bob_id), now=alice.now)
    with pytest.raises(ToolError, match=r"portfolio_id: .* is not one of your portfolios"):
        await tools.create_alert(args, bob)
    with pytest.raises(ToolError, match="portfolio_id: required for portfolio_value_above"):
        await tools.create_alert(CreateAlertArgs(kind="portfolio_value_above", threshold=Decimal(1)), alice)
    assert (await app_client.get("/api/v1/alerts", headers=bob_headers)).json() == []
