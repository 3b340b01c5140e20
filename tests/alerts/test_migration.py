"""0008_alerts_delivery converts the first version's alerts without losing any."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from sage.ops import schema


async def test_existing_alerts_become_level_alerts_with_their_state(fresh_database: Callable[..., Any]) -> None:
    url = await fresh_database()
    await schema.upgrade(url, "0004_alerts")
    user, pending, fired = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO users (id, email, password_hash) VALUES ($1, 'a@example.com', 'x')", user)
        await conn.execute(
            "INSERT INTO market_alerts (id, user_id, symbol, condition, threshold) VALUES ($1, $2, 'BTC/USDT', 'above', 100000)",
            pending,
            user,
        )
        await conn.execute(
            "INSERT INTO market_alerts (id, user_id, symbol, condition, threshold, triggered_at, triggered_price)"
            " VALUES ($1, $2, 'ETH/USDT', 'below', 3000, now(), 2999.5)",
            fired,
            user,
        )
        await schema.upgrade(url)
        rows = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, kind, symbol, threshold, status, armed, fire_count, triggered_price, repeat FROM market_alerts"
            )
        }
        await schema.downgrade(url, "0004_alerts")
        back = await conn.fetch(
            "SELECT id, condition, triggered_at IS NULL AS pending FROM market_alerts ORDER BY symbol"
        )
    finally:
        await conn.close()
    assert (rows[pending]["kind"], rows[pending]["status"], rows[pending]["armed"]) == ("price_above", "active", True)
    assert (rows[fired]["kind"], rows[fired]["status"], rows[fired]["fire_count"]) == ("price_below", "triggered", 1)
    assert str(rows[fired]["triggered_price"]) == "2999.500000000000000000" and rows[pending]["repeat"] == "once"
    assert [(r["id"], r["condition"], r["pending"]) for r in back] == [
        (pending, "above", True),
        (fired, "below", False),
    ]


async def test_portfolio_alerts_need_their_portfolio_and_go_when_downgraded(
    fresh_database: Callable[..., Any],
) -> None:
    url = await fresh_database()
    await schema.upgrade(url)
    user, portfolio, price, drawdown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO users (id, email, password_hash) VALUES ($1, 'a@example.com', 'x')", user)
        await conn.execute(
            "INSERT INTO portfolios (id, user_id, name, base_currency, starting_cash, is_default, created_at,"
            " updated_at) VALUES ($1, $2, 'Main', 'USDT', 0, true, now(), now())",
            portfolio,
            user,
        )
        insert = "INSERT INTO market_alerts (id, user_id, kind, symbol, portfolio_id, threshold) VALUES ($1, $2, $3, $4, $5, 10)"
        await conn.execute(insert, price, user, "price_above", "BTC/USDT", None)
        await conn.execute(insert, drawdown, user, "portfolio_return_below", None, portfolio)
        with pytest.raises(asyncpg.CheckViolationError):  # a portfolio alert without its portfolio
            await conn.execute(insert, uuid.uuid4(), user, "portfolio_value_above", None, None)
        with pytest.raises(asyncpg.CheckViolationError):  # a price alert naming a portfolio
            await conn.execute(insert, uuid.uuid4(), user, "price_below", "BTC/USDT", portfolio)
        await schema.downgrade(url, "0010_grounding_spans")
        left = [r["id"] for r in await conn.fetch("SELECT id FROM market_alerts")]
        await schema.upgrade(url)
    finally:
        await conn.close()
    assert left == [price]
