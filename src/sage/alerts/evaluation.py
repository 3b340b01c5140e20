"""One pass over every active alert: a fixed number of statements per tick, whatever the count.

Readings come in as arrays (fresh agreed prices per symbol, the Fear & Greed value, each
watched portfolio's value); one UPDATE ... FROM derives the percentage moves from the candles,
joins the readings to the active alerts through the partial indexes and, for each alert the
reading concerns, either arms it (the reading is on the quiet side of its level) or fires it
(armed, the reading is on the firing side, the cooldown is over). Firing is a crossing: an
alert that was already true when it was created waits until the market has been on the other
side. Price alerts are read through (symbol, kind, armed, threshold): only those the new price
moves to another state, so a tick costs the same with 10 or 10,000 far-away alerts on it.

Exactly once across tasks: the UPDATE's WHERE re-checks `armed` on the locked row, so when two
tasks race, the second sees the first's `armed = false` and skips the row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from sage.alerts.conditions import WINDOWS

_SPANS = orjson.dumps(WINDOWS).decode()  # change_pct windows in seconds, for the moves above

_EVALUATE = text(
    """
    WITH prices AS (
        SELECT * FROM unnest(CAST(:price_symbols AS text[]), CAST(:price_values AS numeric[])) AS p(symbol, value)
    ),
    -- The move of each (symbol, window) an active change_pct alert watches, from the window's
    -- reference price: the close of the last one-minute candle that started at or before the
    -- window's start (any exchange; the consolidated prices agree within the divergence limit).
    -- A gap of more than ten minutes in the candles means no reference, so no move is reported
    -- rather than a wrong one.
    moves AS (
        SELECT w.symbol, w.win, (p.value - c.close) / c.close * 100 AS value
        FROM (SELECT DISTINCT symbol, change_window AS win FROM market_alerts
              WHERE status = 'active' AND kind = 'change_pct') AS w
        JOIN prices p ON p.symbol = w.symbol
        JOIN LATERAL (
            SELECT close FROM market_candles mc
            WHERE mc.symbol = w.symbol
              AND mc.start <= now() - CAST(CAST(:spans AS jsonb) ->> w.win AS integer) * interval '1 second'
              AND mc.start > now() - CAST(CAST(:spans AS jsonb) ->> w.win AS integer) * interval '1 second'
                                   - interval '10 minutes'
            ORDER BY mc.start DESC LIMIT 1
        ) AS c ON c.close > 0
    ),
    fng AS (
        SELECT CAST(:fng AS numeric) AS value WHERE CAST(:fng AS numeric) IS NOT NULL
    ),
    worth AS (
        SELECT * FROM unnest(CAST(:portfolio_ids AS uuid[]), CAST(:portfolio_values AS numeric[]))
            AS v(portfolio_id, value)
    ),
    readings AS (
        -- Price alerts: only those the price moves to another state, each case one range of
        -- ix_market_alerts_crossing (symbol, kind, armed, threshold) per symbol: armed and
        -- crossed (fires), unarmed and on the quiet side (arms). The others stay as they are.
        SELECT c.id, p.value, c.holds
        FROM prices p CROSS JOIN LATERAL (
            SELECT a.id, true AS holds FROM market_alerts a
            WHERE a.status = 'active' AND a.symbol = p.symbol AND a.kind = 'price_above'
              AND a.armed AND a.threshold <= p.value
            UNION ALL
            SELECT a.id, false FROM market_alerts a
            WHERE a.status = 'active' AND a.symbol = p.symbol AND a.kind = 'price_above'
              AND NOT a.armed AND a.threshold > p.value
            UNION ALL
            SELECT a.id, true FROM market_alerts a
            WHERE a.status = 'active' AND a.symbol = p.symbol AND a.kind = 'price_below'
              AND a.armed AND a.threshold >= p.value
            UNION ALL
            SELECT a.id, false FROM market_alerts a
            WHERE a.status = 'active' AND a.symbol = p.symbol AND a.kind = 'price_below'
              AND NOT a.armed AND a.threshold < p.value
        ) AS c
        UNION ALL
        SELECT a.id, m.value,
               CASE a.direction WHEN 'up' THEN m.value >= a.threshold
                                WHEN 'down' THEN m.value <= -a.threshold
                                ELSE abs(m.value) >= a.threshold END
        FROM market_alerts a JOIN moves m ON a.symbol = m.symbol AND a.change_window = m.win
        WHERE a.status = 'active' AND a.kind = 'change_pct'
        UNION ALL
        SELECT a.id, f.value,
               CASE a.kind WHEN 'fear_greed_above' THEN f.value >= a.threshold ELSE f.value <= a.threshold END
        FROM market_alerts a CROSS JOIN fng f
        WHERE a.status = 'active' AND a.kind IN ('fear_greed_above', 'fear_greed_below')
        UNION ALL
        SELECT a.id, v.value,
               CASE a.kind WHEN 'portfolio_value_above' THEN v.value >= a.threshold
                           WHEN 'portfolio_value_below' THEN v.value <= a.threshold
                           ELSE v.value <= a.peak_value * (1 - a.threshold / 100) END
        FROM market_alerts a JOIN worth v ON a.portfolio_id = v.portfolio_id
        WHERE a.status = 'active'
          AND a.kind IN ('portfolio_value_above', 'portfolio_value_below', 'portfolio_return_below')
    )
    UPDATE market_alerts a SET
        armed = NOT r.holds,
        status = CASE WHEN r.holds AND a.repeat = 'once' THEN 'triggered' ELSE a.status END,
        fire_count = a.fire_count + CASE WHEN r.holds THEN 1 ELSE 0 END,
        triggered_at = CASE WHEN r.holds THEN now() ELSE a.triggered_at END,
        triggered_price = CASE WHEN r.holds THEN r.value ELSE a.triggered_price END,
        updated_at = now()
    FROM readings r
    -- the ids again as an array: the rows to change are then found through the primary key
    -- (the planner cannot tell how few readings the ranges above return, and would rather
    -- hash the whole table)
    WHERE a.id = ANY(ARRAY(SELECT id FROM readings)) AND a.id = r.id AND a.status = 'active'
      AND ((NOT a.armed AND NOT r.holds)
           OR (a.armed AND r.holds
               AND (a.repeat = 'once' OR a.triggered_at IS NULL
                    OR a.triggered_at <= now() - a.cooldown_seconds * interval '1 second')))
    RETURNING a.id, a.user_id, a.kind, a.symbol, a.threshold, a.direction, a.change_window, a.note,
              a.repeat, a.portfolio_id, a.peak_value, r.value, r.holds AS fired
    """
)

# A drawdown alert measures from the highest value its portfolio reached while it was active;
# the peak moves up before the alerts are evaluated, so a new high re-arms at once.
_PEAKS = text(
    """
    UPDATE market_alerts a SET peak_value = v.value, updated_at = now()
    FROM unnest(CAST(:portfolio_ids AS uuid[]), CAST(:portfolio_values AS numeric[])) AS v(portfolio_id, value)
    WHERE a.portfolio_id = v.portfolio_id AND a.kind = 'portfolio_return_below' AND a.status = 'active'
      AND (a.peak_value IS NULL OR v.value > a.peak_value)
    """
)


@dataclass(frozen=True)
class Readings:
    """What the market says right now; only fresh, agreed values belong here."""

    prices: dict[str, Decimal]
    fear_greed: int | None = None
    portfolios: dict[uuid.UUID, Decimal] = field(default_factory=dict)  # value in the base currency
    # each valued portfolio's name and base currency, for the notification's words
    portfolio_labels: dict[uuid.UUID, tuple[str | None, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """An alert the pass touched: `fired`, or merely armed (its reading was on the quiet side)."""

    alert_id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    symbol: str | None
    threshold: Decimal
    direction: str | None
    window: str | None
    note: str | None
    repeat: str
    value: Decimal
    fired: bool
    portfolio_id: uuid.UUID | None = None
    peak: Decimal | None = None  # a drawdown alert's peak value


async def evaluate(session: AsyncSession, readings: Readings) -> list[Outcome]:
    """Arm and fire in one statement; the caller writes notifications and commits."""
    worth = {"portfolio_ids": list(readings.portfolios), "portfolio_values": list(readings.portfolios.values())}
    if readings.portfolios:
        await session.execute(_PEAKS, worth)
    result = await session.execute(
        _EVALUATE,
        {
            "price_symbols": list(readings.prices),
            "price_values": list(readings.prices.values()),
            "spans": _SPANS,
            "fng": readings.fear_greed,
            **worth,
        },
    )
    return [
        Outcome(
            alert_id=r.id,
            user_id=r.user_id,
            kind=r.kind,
            symbol=r.symbol,
            threshold=r.threshold,
            direction=r.direction,
            window=r.change_window,
            note=r.note,
            repeat=r.repeat,
            value=r.value,
            fired=r.fired,
            portfolio_id=r.portfolio_id,
            peak=r.peak_value,
        )
        for r in result
    ]
