"""Market price alerts: users set a threshold; the evaluator fires each alert exactly once.

Exactly once across every API task: firing is a conditional UPDATE (`triggered_at IS NULL`)
that only one process can win; the winner notifies. Stale or diverged prices never fire an
alert: a broken feed must not tell a user that BTC crashed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update

from sage.errors import Conflict, NotFound
from sage.observability.metrics import Metrics
from sage.store.alert_tables import MarketAlert
from sage.store.db import Database

log = logging.getLogger(__name__)

MAX_ALERTS_PER_USER = 50


class PriceReader(Protocol):
    async def consolidated(self, symbols: Sequence[str] | None = None) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Fired:
    alert_id: uuid.UUID
    user_id: uuid.UUID
    symbol: str
    condition: str
    threshold: Decimal
    price: Decimal


class PriceAlertService:
    def __init__(self, db: Database, metrics: Metrics) -> None:
        self.db = db
        self.metrics = metrics

    async def create(self, *, user_id: uuid.UUID, symbol: str, condition: str, threshold: Decimal) -> MarketAlert:
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(MarketAlert).where(MarketAlert.user_id == user_id)
            )
            if (count or 0) >= MAX_ALERTS_PER_USER:
                raise Conflict(f"At most {MAX_ALERTS_PER_USER} alerts per user; delete one first")
            alert = MarketAlert(
                id=uuid.uuid4(), user_id=user_id, symbol=symbol, condition=condition, threshold=threshold
            )
            session.add(alert)
            await session.commit()
            await session.refresh(alert)
            return alert

    async def list_for(self, *, user_id: uuid.UUID) -> list[MarketAlert]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(MarketAlert).where(MarketAlert.user_id == user_id).order_by(MarketAlert.created_at)
            )
            return list(rows)

    async def delete(self, *, user_id: uuid.UUID, alert_id: uuid.UUID) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(MarketAlert).where(MarketAlert.id == alert_id, MarketAlert.user_id == user_id)
            )
            await session.commit()
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"No alert {alert_id}")

    async def evaluate(self, prices: PriceReader) -> list[Fired]:
        """Fire every pending alert whose condition holds at a fresh, agreed price."""
        async with self.db.session() as session:
            symbols = list(
                await session.scalars(select(MarketAlert.symbol).where(MarketAlert.triggered_at.is_(None)).distinct())
            )
        if not symbols:
            return []
        usable = {p.symbol: p.price for p in await prices.consolidated(symbols) if not p.stale and not p.diverged}
        fired: list[Fired] = []
        async with self.db.session() as session:
            for symbol, price in usable.items():
                result = await session.execute(
                    update(MarketAlert)
                    .where(
                        MarketAlert.symbol == symbol,
                        MarketAlert.triggered_at.is_(None),
                        ((MarketAlert.condition == "above") & (MarketAlert.threshold <= price))
                        | ((MarketAlert.condition == "below") & (MarketAlert.threshold >= price)),
                    )
                    .values(triggered_at=datetime.now(UTC), triggered_price=price)
                    .returning(MarketAlert.id, MarketAlert.user_id, MarketAlert.condition, MarketAlert.threshold)
                )
                fired.extend(Fired(r.id, r.user_id, symbol, r.condition, r.threshold, price) for r in result)
            await session.commit()
        if fired:
            self.metrics.incr("MarketAlertsSent", len(fired))
        return fired
