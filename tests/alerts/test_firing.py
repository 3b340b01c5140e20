"""When alerts fire: crossings, already-true at creation, moves, Fear & Greed, repeats, pauses."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from sqlalchemy import text

from sage.alerts.evaluation import Readings
from sage.alerts.service import PriceAlertService
from sage.market.catalog import ListedSymbols, SymbolCatalog
from sage.observability.metrics import Metrics
from sage.settings import Settings
from sage.store.db import Database, create_engine
from tests.alerts.support import create, fear_greed, inbox, move, services, tick
from tests.chat.support import FakeMarket


async def test_a_level_fires_when_the_price_crosses_it(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    created = await create(app_client, auth_headers, kind="price_above", symbol="BTC/USDT", threshold="100000")
    assert created.json()["already_triggered"] is False
    assert await tick(app_client) == 0
    move(market_reader, "BTC/USDT", "100250.5")
    assert await tick(app_client) == 1
    [note] = await inbox(app_client, auth_headers)
    assert note["title"] == "Alert: BTC/USDT above 100,000"
    assert note["body"] == "BTC/USDT above 100,000: now 100,250.5."
    listed = (await app_client.get("/api/v1/alerts", headers=auth_headers)).json()[0]
    assert (listed["status"], listed["triggered_price"], listed["fire_count"]) == ("triggered", "100250.5", 1)
    assert await tick(app_client) == 0  # once


async def test_a_level_already_true_at_creation_is_reported_and_waits_for_a_crossing(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    created = await create(app_client, auth_headers, kind="price_below", symbol="ETH/USDT", threshold="4000")
    body = created.json()
    assert body["already_triggered"] is True
    assert "already true" in body["message"] and "4,000" in body["message"]
    assert await tick(app_client) == 0  # not fired silently
    move(market_reader, "ETH/USDT", "4100")
    assert await tick(app_client) == 0  # back on the quiet side: armed
    move(market_reader, "ETH/USDT", "3990")
    assert await tick(app_client) == 1


async def test_stale_or_diverged_prices_neither_fire_nor_arm(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    await create(app_client, auth_headers, kind="price_below", symbol="BTC/USDT", threshold="60000")
    await create(app_client, auth_headers, kind="price_above", symbol="SOL/USDT", threshold="100")  # already true
    move(market_reader, "BTC/USDT", "10", stale=True)
    move(market_reader, "SOL/USDT", "50", diverged=True)
    assert await tick(app_client) == 0
    move(market_reader, "SOL/USDT", "200")  # had the diverged 50 armed it, this would fire
    assert await tick(app_client) == 0


async def test_every_mode_waits_for_the_cooldown_and_a_new_crossing(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket, settings: Settings
) -> None:
    await create(
        app_client,
        auth_headers,
        kind="price_above",
        symbol="SOL/USDT",
        threshold="200",
        repeat="every",
        cooldown_seconds=3600,
    )
    for price, fired in (("201", 1), ("199", 0), ("202", 0), ("201", 0)):  # chop within the cooldown
        move(market_reader, "SOL/USDT", price)
        assert await tick(app_client) == fired, price
    async with services(app_client).price_alerts.db.session() as session:  # the cooldown passes
        await session.execute(text("UPDATE market_alerts SET triggered_at = triggered_at - interval '2 hours'"))
        await session.commit()
    assert await tick(app_client) == 1  # still above and armed: fires once the cooldown is over
    assert await tick(app_client) == 0
    listed = (await app_client.get("/api/v1/alerts", headers=auth_headers)).json()[0]
    assert (listed["status"], listed["fire_count"]) == ("active", 2)


async def test_a_paused_alert_does_not_fire_until_resumed(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    alert = (await create(app_client, auth_headers, kind="price_above", symbol="BTC/USDT", threshold="98000")).json()
    await app_client.patch(f"/api/v1/alerts/{alert['id']}", json={"paused": True}, headers=auth_headers)
    move(market_reader, "BTC/USDT", "99000")
    assert await tick(app_client) == 0
    resumed = await app_client.patch(f"/api/v1/alerts/{alert['id']}", json={"paused": False}, headers=auth_headers)
    assert resumed.json()["already_triggered"] is True  # it crossed while paused: reported, not fired
    move(market_reader, "BTC/USDT", "97000")
    assert await tick(app_client) == 0
    move(market_reader, "BTC/USDT", "98000")
    assert await tick(app_client) == 1


async def test_a_percentage_move_within_a_window_fires_from_candles(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    async with services(app_client).price_alerts.db.session() as session:
        for exchange, close in (("binance", "100"), ("gateio", "100.1")):
            await session.execute(
                text(
                    "INSERT INTO market_candles (exchange, symbol, start, open, high, low, close, volume, ticks)"
                    " VALUES (:e, 'SOL/USDT', date_trunc('minute', now() - interval '61 minutes'),"
                    " :c, :c, :c, :c, 1, 1)"
                ),
                {"e": exchange, "c": Decimal(close)},
            )
        await session.commit()
    await create(
        app_client, auth_headers, kind="change_pct", symbol="SOL/USDT", threshold="5", window="1h", direction="up"
    )
    await create(
        app_client, auth_headers, kind="change_pct", symbol="SOL/USDT", threshold="5", window="1h", direction="down"
    )
    await create(app_client, auth_headers, kind="change_pct", symbol="SOL/USDT", threshold="5", window="24h")
    move(market_reader, "SOL/USDT", "101")
    assert await tick(app_client) == 0  # +1 %: arms the 1h alerts; 24h has no candle that old
    move(market_reader, "SOL/USDT", "106.2")
    assert await tick(app_client) == 1  # +6 %: the "up" one
    [note] = await inbox(app_client, auth_headers)
    assert note["title"] == "Alert: SOL/USDT up 5 % within 1h"
    assert note["data"]["kind"] == "change_pct"


async def test_fear_and_greed_alerts_fire_when_the_index_crosses(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    fear_greed(market_reader, 50)
    created = await create(app_client, auth_headers, kind="fear_greed_below", threshold="25", note="buy the fear")
    assert created.json()["already_triggered"] is False
    fear_greed(market_reader, 20)
    assert await tick(app_client) == 1
    [note] = await inbox(app_client, auth_headers)
    assert note["body"] == "Fear & Greed below 25: the index is 20. Your note: buy the fear"


async def test_an_alert_fires_once_even_when_several_processes_evaluate(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket, settings: Settings
) -> None:
    await create(app_client, auth_headers, kind="price_above", symbol="BTC/USDT", threshold="98000")
    await create(app_client, auth_headers, kind="price_below", symbol="BTC/USDT", threshold="50000")
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
    readings = Readings({"BTC/USDT": Decimal("99000")})
    results = await asyncio.gather(*(p.evaluate(readings) for p in processes))
    fired = [f for r in results for f in r.fired]
    assert [(f.kind, f.threshold, f.value) for f in fired] == [("price_above", Decimal("98000"), Decimal("99000"))]
    assert metrics.value("MarketAlertsSent") == 1
    assert len(await inbox(app_client, auth_headers)) == 1
    for db in dbs:
        await db.dispose()


async def test_ten_thousand_alerts_on_fifty_symbols_fire_in_one_pass_of_a_fixed_statement_count(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], settings: Settings
) -> None:
    service = services(app_client).price_alerts
    user = (await app_client.get("/api/v1/users/me", headers=auth_headers)).json()["id"]
    symbols = [f"C{i}/USDT" for i in range(50)]
    async with service.db.session() as session:
        await session.execute(
            text(
                "INSERT INTO market_alerts (id, user_id, kind, symbol, threshold, status, armed)"
                " SELECT gen_random_uuid(), CAST(:u AS uuid), 'price_above', 'C' || (g % 50) || '/USDT',"
                " 100 + g % 7, 'active', false FROM generate_series(1, 10000) AS g"
            ),
            {"u": user},
        )
        await session.commit()
    statements: list[str] = []
    engine = service.db.engine.sync_engine

    from sqlalchemy import event

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        low = await service.evaluate(Readings(dict.fromkeys(symbols, Decimal(50))))  # arms all
        armed_statements = len(statements)
        statements.clear()
        high = await service.evaluate(Readings(dict.fromkeys(symbols, Decimal(200))))  # fires all
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert low.fired == [] and len(high.fired) == 10_000 and len(high.notifications) == 10_000
    # Arming: the UPDATE (which also reads the candle references). Firing adds one INSERT of the
    # notifications and their deliveries. However many alerts: two statements.
    assert (armed_statements, len(statements)) == (1, 2)
