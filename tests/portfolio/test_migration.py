"""0007_portfolio_ledger turns the positions of a live database into ledgers, losing nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

import asyncpg

from sage.ops import schema
from sage.portfolio.ledger import Entry, replay

BEFORE = "0004_alerts"
CREATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
UPDATED = datetime(2026, 3, 5, 17, 30, tzinfo=UTC)

POSITIONS = {
    "alice": [("BTC/USDT", "0.5", "60000"), ("ETH/USDT", "2.123456789012345678", "3999.999999999999999999")],
    "bob": [("XRP/USDT", "100", "0")],  # an average cost of 0 was allowed by the old API
}


async def _seed(url: str) -> dict[str, uuid.UUID]:
    conn = await asyncpg.connect(url)
    users: dict[str, uuid.UUID] = {}
    try:
        for name, positions in POSITIONS.items():
            users[name] = uuid.uuid4()
            await conn.execute(
                "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')", users[name], f"{name}@example.com"
            )
            for symbol, quantity, cost in positions:
                await conn.execute(
                    "INSERT INTO portfolio_positions (id, user_id, symbol, quantity, average_cost, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    uuid.uuid4(),
                    users[name],
                    symbol,
                    Decimal(quantity),
                    Decimal(cost),
                    CREATED,
                    UPDATED,
                )
    finally:
        await conn.close()
    return users


async def _ledger_of(conn: asyncpg.Connection, user_id: uuid.UUID) -> tuple[Any, list[asyncpg.Record]]:
    rows = await conn.fetch(
        "SELECT t.* FROM portfolio_transactions t JOIN portfolios p ON p.id = t.portfolio_id"
        " WHERE p.user_id = $1 AND p.is_default ORDER BY t.executed_at, t.seq",
        user_id,
    )
    entries = [
        Entry(r["kind"], r["symbol"], r["quantity"], r["price"], r["fee"], r["executed_at"], r["id"]) for r in rows
    ]
    return replay(entries), rows


async def test_each_position_becomes_an_opening_trade_of_a_default_portfolio_covered_by_a_deposit(
    fresh_database: Callable[..., Any],
) -> None:
    url = await fresh_database()
    await schema.upgrade(url, BEFORE)
    users = await _seed(url)

    await schema.upgrade(url)

    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('portfolio_positions')") is None
        portfolios = await conn.fetch("SELECT * FROM portfolios ORDER BY name")
        assert len(portfolios) == 2 and all(p["is_default"] and p["name"] == "Default" for p in portfolios)
        for name, positions in POSITIONS.items():
            ledger, rows = await _ledger_of(conn, users[name])
            held = {s: (h.quantity, h.average_cost) for s, h in ledger.holdings.items()}
            assert held == {s: (Decimal(q), Decimal(c)) for s, q, c in positions}
            assert all(r["fee"] == 0 for r in rows)
            assert {r["executed_at"] for r in rows if r["kind"] == "buy"} == {UPDATED}
            # the convention: cash after the migration is 0, up to the deposit's round-up to 1e-18
            assert Decimal(0) <= ledger.cash < Decimal("1e-18") * len(positions)
        alice, _ = await _ledger_of(conn, users["alice"])
        covering = sum(
            (Decimal(q) * Decimal(c)).quantize(Decimal("1e-18"), rounding=ROUND_CEILING)
            for _, q, c in POSITIONS["alice"]
        )
        assert alice.deposits == covering == Decimal("38493.827156049382711998")
        bob_rows = (await _ledger_of(conn, users["bob"]))[1]
        assert [r["kind"] for r in bob_rows] == ["buy"]  # nothing to cover: no deposit of 0
    finally:
        await conn.close()


async def test_downgrade_rebuilds_the_positions_from_the_default_ledger(fresh_database: Callable[..., Any]) -> None:
    url = await fresh_database()
    await schema.upgrade(url, BEFORE)
    users = await _seed(url)
    await schema.upgrade(url)

    await schema.downgrade(url, BEFORE)

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT user_id, symbol, quantity, average_cost FROM portfolio_positions")
        got = {(r["user_id"], r["symbol"]): (r["quantity"], r["average_cost"]) for r in rows}
        want = {
            (users[name], s): (Decimal(q), Decimal(c)) for name, positions in POSITIONS.items() for s, q, c in positions
        }
        assert got == want
        assert await conn.fetchval("SELECT to_regclass('portfolios')") is None
    finally:
        await conn.close()
