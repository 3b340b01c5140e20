"""A pass reads only the alerts the new price crosses (ix_market_alerts_crossing), in both directions."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
from sqlalchemy import text

from sage.alerts.evaluation import _EVALUATE, _SPANS, Readings
from tests.alerts.support import services

SYMBOLS = [f"C{i}/USDT" for i in range(50)]

# 10,000 armed alerts of another user, far from any price in these tests: above 1,000 and below 1.
_FAR_AWAY = text(
    "INSERT INTO market_alerts (id, user_id, kind, symbol, threshold, status, armed)"
    " SELECT gen_random_uuid(), CAST(:u AS uuid), CASE WHEN g % 2 = 0 THEN 'price_above' ELSE 'price_below' END,"
    " 'C' || (g % 50) || '/USDT', CASE WHEN g % 2 = 0 THEN 1000 + g ELSE 1 - g / 100000.0 END, 'active', true"
    " FROM generate_series(1, 10000) AS g"
)


async def _user(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await client.get("/api/v1/users/me", headers=headers)).json()["id"])


async def test_a_pass_among_many_far_away_alerts_touches_only_those_the_price_crosses(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    service = services(app_client).price_alerts
    user = await _user(app_client, auth_headers)
    near = {  # (kind, threshold, armed) on C0/USDT, whose price goes from 100 to 102
        "fires_up": ("price_above", "101", True),
        "arms_up": ("price_above", "105", False),
        "waits_up": ("price_above", "101.5", False),  # true at 102 but never armed: no crossing
        "stays_up": ("price_above", "103", True),  # armed, not reached
        "fires_down": ("price_below", "103", True),  # 102 <= 103
        "arms_down": ("price_below", "90", False),
        "stays_down": ("price_below", "95", True),
    }
    async with service.db.session() as session:
        await session.execute(_FAR_AWAY, {"u": user})
        ids = {}
        for name, (kind, threshold, armed) in near.items():
            ids[name] = await session.scalar(
                text(
                    "INSERT INTO market_alerts (id, user_id, kind, symbol, threshold, status, armed)"
                    " VALUES (gen_random_uuid(), CAST(:u AS uuid), :k, 'C0/USDT', :t, 'active', :a) RETURNING id"
                ),
                {"u": user, "k": kind, "t": Decimal(threshold), "a": armed},
            )
        await session.commit()
    prices = dict.fromkeys(SYMBOLS, Decimal(100))
    prices["C0/USDT"] = Decimal(102)
    result = await service.evaluate(Readings(prices))
    assert sorted(o.alert_id for o in result.fired) == sorted([ids["fires_up"], ids["fires_down"]])
    async with service.db.session() as session:
        rows = (
            await session.execute(
                text("SELECT id, armed, fire_count, updated_at > created_at AS touched FROM market_alerts")
            )
        ).all()
    touched = {r.id for r in rows if r.touched}
    assert touched == {ids[n] for n in ("fires_up", "fires_down", "arms_up", "arms_down")}
    state = {r.id: (r.armed, r.fire_count) for r in rows}
    assert state[ids["arms_up"]] == state[ids["arms_down"]] == (True, 0)
    assert state[ids["waits_up"]] == (False, 0)
    assert state[ids["stays_up"]] == state[ids["stays_down"]] == (True, 0)
    assert len(result.notifications) == 2


async def test_the_pass_reads_active_price_alerts_through_the_crossing_index(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    service = services(app_client).price_alerts
    async with service.db.session() as session:
        await session.execute(_FAR_AWAY, {"u": await _user(app_client, auth_headers)})
        await session.execute(text("ANALYZE market_alerts"))
        await session.commit()
        plan = await session.scalar(
            text("EXPLAIN (FORMAT JSON) " + str(_EVALUATE.text)),
            {
                "price_symbols": SYMBOLS,
                "price_values": [Decimal(100)] * len(SYMBOLS),
                "spans": _SPANS,
                "fng": None,
                "portfolio_ids": [],
                "portfolio_values": [],
            },
        )
    nodes: list[dict[str, object]] = []

    def walk(node: dict[str, object]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):  # type: ignore[attr-defined]
            walk(child)

    walk((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    seq_scans = [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "market_alerts"]
    assert seq_scans == []
    # the four price cases (above/below x armed/unarmed), each a range of the crossing index
    crossing = [n for n in nodes if n.get("Index Name") == "ix_market_alerts_crossing"]
    assert len(crossing) == 4, [(n["Node Type"], n.get("Index Name")) for n in nodes]
