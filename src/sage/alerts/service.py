"""Users' market alerts: create, list, edit (pause/resume), delete, and the evaluation pass.

Exactly once across every API task: firing is a conditional UPDATE that only one process can
win (see `sage.alerts.evaluation`). The same transaction writes the notification and its
delivery rows (`sage.notifications.outbox`), so a fired alert is never lost and never
notified twice. Stale or diverged prices never fire an alert: a broken feed must not tell a
user that BTC crashed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, func, select, text

from sage.alerts.conditions import (
    FEAR_GREED_KINDS,
    PRICE_KINDS,
    AlertSpec,
    Direction,
    InvalidAlert,
    Kind,
    Repeat,
    describe,
    human_number,
)
from sage.alerts.evaluation import Outcome, Readings, evaluate
from sage.errors import Conflict, NotFound
from sage.market.reader import MarketReader, SymbolValidator
from sage.notifications.outbox import NewNotification, Recorded, record
from sage.observability.metrics import Metrics
from sage.store.alert_tables import MarketAlert
from sage.store.db import Database

log = logging.getLogger(__name__)

MAX_ALERTS_PER_USER = 50
FEAR_GREED_FRESH = timedelta(hours=48)  # the index is published once a day


@dataclass(frozen=True)
class Created:
    alert: MarketAlert
    already_triggered: bool
    message: str | None


@dataclass(frozen=True)
class AlertChanges:
    """A PATCH: only the fields given change. `paused` pauses or resumes."""

    threshold: Decimal | None = None
    repeat: Repeat | None = None
    cooldown_seconds: int | None = None
    note: str | None = None
    clear_note: bool = False
    paused: bool | None = None


@dataclass(frozen=True)
class Evaluation:
    fired: list[Outcome]
    notifications: list[Recorded]


class PriceAlertService:
    def __init__(self, db: Database, metrics: Metrics, prices: MarketReader, symbols: SymbolValidator) -> None:
        self.db = db
        self.metrics = metrics
        self.prices = prices
        self.symbols = symbols

    # -- the user's alerts ----------------------------------------------------------------------
    async def create(self, *, user_id: uuid.UUID, spec: AlertSpec) -> Created:
        spec = spec.checked()
        if spec.symbol is not None:
            spec = replace(spec, symbol=await self.symbols.require(spec.symbol))
        holds = await self._holds_now(spec.kind, spec.symbol, spec.threshold)
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(MarketAlert).where(MarketAlert.user_id == user_id)
            )
            if (count or 0) >= MAX_ALERTS_PER_USER:
                raise Conflict(f"At most {MAX_ALERTS_PER_USER} alerts per user; delete one first")
            alert = MarketAlert(
                id=uuid.uuid4(),
                user_id=user_id,
                kind=spec.kind.value,
                symbol=spec.symbol,
                threshold=spec.threshold,
                direction=spec.direction.value if spec.direction else None,
                change_window=spec.window,
                repeat=spec.repeat.value,
                cooldown_seconds=spec.cooldown_seconds,
                note=spec.note,
                status="active",
                armed=holds is False,  # unknown (None): the first fresh reading on the quiet side arms it
            )
            session.add(alert)
            await session.commit()
            await session.refresh(alert)
        return Created(alert, holds is True, _already_message(alert) if holds else None)

    async def list_for(self, *, user_id: uuid.UUID) -> list[MarketAlert]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(MarketAlert).where(MarketAlert.user_id == user_id).order_by(MarketAlert.created_at)
            )
            return list(rows)

    async def get(self, *, user_id: uuid.UUID, alert_id: uuid.UUID) -> MarketAlert:
        async with self.db.session() as session:
            alert = await session.scalar(
                select(MarketAlert).where(MarketAlert.id == alert_id, MarketAlert.user_id == user_id)
            )
        if alert is None:
            raise NotFound(f"No alert {alert_id}")
        return alert

    async def update(self, *, user_id: uuid.UUID, alert_id: uuid.UUID, changes: AlertChanges) -> Created:
        """Edit, pause or resume. A new level, or a resume, re-arms the alert from the market now."""
        async with self.db.session() as session:
            alert = await session.scalar(
                select(MarketAlert).where(MarketAlert.id == alert_id, MarketAlert.user_id == user_id).with_for_update()
            )
            if alert is None:
                raise NotFound(f"No alert {alert_id}")
            spec = AlertSpec(
                kind=Kind(alert.kind),
                threshold=changes.threshold if changes.threshold is not None else alert.threshold,
                symbol=alert.symbol,
                direction=Direction(alert.direction) if alert.direction else None,
                window=alert.change_window,
                repeat=changes.repeat or Repeat(alert.repeat),
                cooldown_seconds=changes.cooldown_seconds or alert.cooldown_seconds,
                note=None if changes.clear_note else (changes.note if changes.note is not None else alert.note),
            ).checked()
            rearm = changes.threshold is not None or changes.paused is False
            holds: bool | None = None
            if rearm:
                holds = await self._holds_now(spec.kind, spec.symbol, spec.threshold)
                alert.armed = holds is False
            alert.threshold = spec.threshold
            alert.repeat = spec.repeat.value
            alert.cooldown_seconds = spec.cooldown_seconds
            alert.note = spec.note
            if changes.paused is True:
                alert.status = "paused"
            elif changes.paused is False or (rearm and alert.status == "triggered"):
                alert.status = "active"
            alert.updated_at = datetime.now(UTC)
            await session.commit()
            await session.refresh(alert)
        return Created(alert, holds is True, _already_message(alert) if holds else None)

    async def delete(self, *, user_id: uuid.UUID, alert_id: uuid.UUID) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(MarketAlert).where(MarketAlert.id == alert_id, MarketAlert.user_id == user_id)
            )
            await session.commit()
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"No alert {alert_id}")

    # -- evaluation -----------------------------------------------------------------------------
    async def readings(self) -> Readings:
        """Fresh, agreed readings for the symbols that active alerts watch."""
        async with self.db.session() as session:
            symbols = list(
                await session.scalars(
                    text("SELECT DISTINCT symbol FROM market_alerts WHERE status = 'active' AND symbol IS NOT NULL")
                )
            )
            wants_fng = bool(
                await session.scalar(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM market_alerts WHERE status = 'active'"
                        " AND kind IN ('fear_greed_above', 'fear_greed_below'))"
                    )
                )
            )
        prices = (
            {q.symbol: q.price for q in await self.prices.consolidated(symbols) if not q.stale and not q.diverged}
            if symbols
            else {}
        )
        fear_greed = None
        if wants_fng:
            reading = await self.prices.fear_greed()
            if reading is not None and datetime.now(UTC) - reading.as_of <= FEAR_GREED_FRESH:
                fear_greed = reading.value
        return Readings(prices, fear_greed)

    async def evaluate(self, readings: Readings | None = None) -> Evaluation:
        """Arm and fire every active alert the readings concern; notifications in the same transaction."""
        readings = readings if readings is not None else await self.readings()
        if not readings.prices and readings.fear_greed is None:
            return Evaluation([], [])
        async with self.db.session() as session:
            outcomes = await evaluate(session, readings)
            fired = [o for o in outcomes if o.fired]
            recorded = await record(session, [_notification(o) for o in fired])
            await session.commit()
        if fired:
            self.metrics.incr("MarketAlertsSent", len(fired))
            self.metrics.incr("NotificationsDelivered", len(recorded), channel="in_app")
        return Evaluation(fired, recorded)

    async def _holds_now(self, kind: Kind, symbol: str | None, threshold: Decimal) -> bool | None:
        """Whether a level alert's condition is already true (None: no fresh reading to tell)."""
        if kind in PRICE_KINDS and symbol is not None:
            quotes = [q for q in await self.prices.consolidated([symbol]) if not q.stale and not q.diverged]
            if not quotes:
                return None
            price = quotes[0].price
            return price >= threshold if kind is Kind.PRICE_ABOVE else price <= threshold
        if kind in FEAR_GREED_KINDS:
            reading = await self.prices.fear_greed()
            if reading is None or datetime.now(UTC) - reading.as_of > FEAR_GREED_FRESH:
                return None
            return reading.value >= threshold if kind is Kind.FEAR_GREED_ABOVE else reading.value <= threshold
        return None  # change_pct: the evaluator arms it on the first quiet reading


def _already_message(alert: MarketAlert) -> str:
    what = describe(
        alert.kind, alert.threshold, symbol=alert.symbol, direction=alert.direction, window=alert.change_window
    )
    return (
        f"{what} is already true now, so it did not fire; it will fire when the market crosses"
        f" {human_number(alert.threshold)} again after moving back."
    )


def _notification(outcome: Outcome) -> NewNotification:
    what = describe(
        outcome.kind, outcome.threshold, symbol=outcome.symbol, direction=outcome.direction, window=outcome.window
    )
    if outcome.kind == Kind.CHANGE_PCT:
        now = f"moved {outcome.value:+.2f} % within {outcome.window}"
    elif outcome.kind in (Kind.FEAR_GREED_ABOVE, Kind.FEAR_GREED_BELOW):
        now = f"the index is {human_number(outcome.value)}"
    else:
        now = f"now {human_number(outcome.value)}"
    body = f"{what}: {now}."
    if outcome.note:
        body += f" Your note: {outcome.note}"
    data = {
        "alert_id": str(outcome.alert_id),
        "kind": outcome.kind,
        "symbol": outcome.symbol,
        "threshold": human_number(outcome.threshold),
        "value": human_number(outcome.value),
        "repeat": outcome.repeat,
    }
    return NewNotification(
        user_id=outcome.user_id,
        kind="alert",
        title=f"Alert: {what}",
        body=body,
        data=data,
        alert_id=outcome.alert_id,
    )


__all__ = ["AlertChanges", "AlertSpec", "Created", "Evaluation", "InvalidAlert", "PriceAlertService"]
