"""Users' market and portfolio alerts: create, list, edit (pause/resume), delete, and the evaluation pass.

Exactly once across every API task: firing is a conditional UPDATE that only one process can
win (see `sage.alerts.evaluation`). The same transaction writes the notification and its
delivery rows (`sage.notifications.outbox`), so a fired alert is never lost and never
notified twice. Stale or diverged prices never fire an alert: a broken feed must not tell a
user that BTC crashed. A portfolio alert reads its portfolio's value from the portfolio
domain's own valuation (`PortfolioValuer.summary`), and only when every position is priced
fresh and agreed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from sage.alerts.conditions import (
    FEAR_GREED_KINDS,
    PORTFOLIO_KINDS,
    PORTFOLIO_VALUE_KINDS,
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
PORTFOLIO_VALUATIONS = 4  # portfolios valued at once in a pass (each holds a pooled connection)
_HUNDRED = Decimal(100)


class PositionWorth(Protocol):
    @property
    def diverged(self) -> bool: ...


class PortfolioWorth(Protocol):
    """What an alert reads of a valued portfolio (`sage.portfolio.valuation.PortfolioSummary`)."""

    @property
    def equity(self) -> Decimal: ...  # cash plus the priced holdings: the API's `total_value`
    @property
    def priced_all(self) -> bool: ...
    @property
    def positions(self) -> Sequence[PositionWorth]: ...
    @property
    def name(self) -> str | None: ...
    @property
    def base_currency(self) -> str: ...


class PortfolioValuer(Protocol):
    """The portfolio domain's valuation (`PortfolioService.summary`): NotFound when the
    portfolio is not the user's."""

    async def summary(self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None = None) -> PortfolioWorth | None: ...


@dataclass(frozen=True)
class Worth:
    """A portfolio's value for alerts; `value` is None unless every position is priced fresh."""

    value: Decimal | None
    name: str | None
    currency: str


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
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        prices: MarketReader,
        symbols: SymbolValidator,
        *,
        portfolios: PortfolioValuer,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.prices = prices
        self.symbols = symbols
        self.portfolios = portfolios

    # -- the user's alerts ----------------------------------------------------------------------
    async def create(self, *, user_id: uuid.UUID, spec: AlertSpec) -> Created:
        spec = spec.checked()
        if spec.symbol is not None:
            spec = replace(spec, symbol=await self.symbols.require(spec.symbol))
        worth: Worth | None = None
        peak: Decimal | None = None
        if spec.kind in PORTFOLIO_KINDS:
            assert spec.portfolio_id is not None  # checked()
            worth = await self._own_worth(user_id, spec.portfolio_id)
            peak = worth.value if spec.kind is Kind.PORTFOLIO_RETURN_BELOW else None
            holds = _portfolio_holds(spec.kind, spec.threshold, worth.value, peak)
        else:
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
                portfolio_id=spec.portfolio_id,
                peak_value=peak,
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
        return Created(alert, holds is True, _already_message(alert, worth) if holds else None)

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
                portfolio_id=alert.portfolio_id,
                direction=Direction(alert.direction) if alert.direction else None,
                window=alert.change_window,
                repeat=changes.repeat or Repeat(alert.repeat),
                cooldown_seconds=changes.cooldown_seconds or alert.cooldown_seconds,
                note=None if changes.clear_note else (changes.note if changes.note is not None else alert.note),
            ).checked()
            rearm = changes.threshold is not None or changes.paused is False
            holds: bool | None = None
            worth: Worth | None = None
            if rearm and spec.kind in PORTFOLIO_KINDS:
                assert alert.portfolio_id is not None
                worth = await self._worth(user_id, alert.portfolio_id)
                if spec.kind is Kind.PORTFOLIO_RETURN_BELOW and worth.value is not None:
                    alert.peak_value = max(alert.peak_value or worth.value, worth.value)
                holds = _portfolio_holds(spec.kind, spec.threshold, worth.value, alert.peak_value)
                alert.armed = holds is False
            elif rearm:
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
        return Created(alert, holds is True, _already_message(alert, worth) if holds else None)

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
        """Fresh, agreed readings for everything active alerts watch: symbols, Fear & Greed, portfolios."""
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
            watched = (
                await session.execute(
                    text(
                        "SELECT DISTINCT user_id, portfolio_id FROM market_alerts"
                        " WHERE status = 'active' AND portfolio_id IS NOT NULL"
                    )
                )
            ).all()
        prices = await self._fresh_prices(symbols)
        fear_greed = None
        if wants_fng:
            reading = await self.prices.fear_greed()
            if reading is not None and datetime.now(UTC) - reading.as_of <= FEAR_GREED_FRESH:
                fear_greed = reading.value
        worths = await self._worths([(row.user_id, row.portfolio_id) for row in watched])
        return Readings(
            prices,
            fear_greed,
            portfolios={pid: w.value for pid, w in worths.items() if w.value is not None},
            portfolio_labels={pid: (w.name, w.currency) for pid, w in worths.items()},
        )

    async def evaluate(self, readings: Readings | None = None) -> Evaluation:
        """Arm and fire every active alert the readings concern; notifications in the same transaction."""
        readings = readings if readings is not None else await self.readings()
        if not readings.prices and readings.fear_greed is None and not readings.portfolios:
            return Evaluation([], [])
        async with self.db.session() as session:
            return await self._fire(session, readings)

    async def evaluate_symbols(self, symbols: Iterable[str]) -> Evaluation:
        """The pass for one tick batch: only the alerts on `symbols` (the ones just ticked).

        One session for the whole pass (which of them alerts watch, then arm and fire): a tick
        pass is on the path from a tick to the user's screen, and each checkout and statement
        is a wait."""
        ticked = sorted(set(symbols))
        if not ticked:
            return Evaluation([], [])
        async with self.db.session() as session:
            watched = list(
                await session.scalars(
                    text(  # one probe of an index on the symbol per symbol, not every alert on it
                        "SELECT s.symbol FROM unnest(CAST(:symbols AS text[])) AS s(symbol) WHERE EXISTS"
                        " (SELECT 1 FROM market_alerts a WHERE a.status = 'active' AND a.symbol = s.symbol)"
                    ),
                    {"symbols": ticked},
                )
            )
            if not watched:  # nobody watches these: no price read (reading one would mark it in demand)
                return Evaluation([], [])
            prices = await self._fresh_prices(watched)
            if not prices:
                return Evaluation([], [])
            return await self._fire(session, Readings(prices))

    async def _fire(self, session: AsyncSession, readings: Readings) -> Evaluation:
        outcomes = await evaluate(session, readings)
        fired = [o for o in outcomes if o.fired]
        recorded = await record(session, [_notification(o, readings) for o in fired])
        await session.commit()
        if fired:
            self.metrics.incr("MarketAlertsSent", len(fired))
            self.metrics.incr("NotificationsDelivered", len(recorded), channel="in_app")
        return Evaluation(fired, recorded)

    async def _fresh_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        if not symbols:
            return {}
        return {q.symbol: q.price for q in await self.prices.consolidated(symbols) if not q.stale and not q.diverged}

    # -- portfolios -----------------------------------------------------------------------------
    async def _worth(self, user_id: uuid.UUID, portfolio_id: uuid.UUID) -> Worth:
        """The portfolio valued by the portfolio domain; NotFound when it is not the user's."""
        summary = await self.portfolios.summary(user_id, portfolio_id)
        if summary is None:  # only when no portfolio is named; kept for the type
            raise NotFound("No such portfolio")
        fresh = summary.priced_all and not any(p.diverged for p in summary.positions)
        return Worth(summary.equity if fresh else None, summary.name, summary.base_currency)

    async def _own_worth(self, user_id: uuid.UUID, portfolio_id: uuid.UUID) -> Worth:
        try:
            return await self._worth(user_id, portfolio_id)
        except NotFound:
            raise InvalidAlert([("portfolio_id", f"{portfolio_id} is not one of your portfolios")]) from None

    async def _worths(self, watched: list[tuple[uuid.UUID, uuid.UUID]]) -> dict[uuid.UUID, Worth]:
        slots = asyncio.Semaphore(PORTFOLIO_VALUATIONS)
        out: dict[uuid.UUID, Worth] = {}

        async def one(user_id: uuid.UUID, portfolio_id: uuid.UUID) -> None:
            async with slots:
                try:
                    out[portfolio_id] = await self._worth(user_id, portfolio_id)
                except NotFound:  # deleted meanwhile: its alerts went with it
                    pass
                except Exception:  # one portfolio that cannot be valued must not stop the others
                    log.warning("portfolio valuation for alerts failed", exc_info=True)

        await asyncio.gather(*(one(u, p) for u, p in watched))
        return out

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


def _portfolio_holds(kind: Kind, threshold: Decimal, value: Decimal | None, peak: Decimal | None) -> bool | None:
    """Whether a portfolio alert's condition is true at `value` (None: not priced fresh)."""
    if value is None:
        return None
    if kind is Kind.PORTFOLIO_VALUE_ABOVE:
        return value >= threshold
    if kind is Kind.PORTFOLIO_VALUE_BELOW:
        return value <= threshold
    top = max(peak or value, value)
    return value <= top * (1 - threshold / _HUNDRED)


def _already_message(alert: MarketAlert, worth: Worth | None) -> str:
    what = describe(
        alert.kind,
        alert.threshold,
        symbol=alert.symbol,
        direction=alert.direction,
        window=alert.change_window,
        portfolio=worth.name if worth else None,
        currency=worth.currency if worth else None,
    )
    crosses = "the portfolio's value crosses" if alert.kind in PORTFOLIO_KINDS else "the market crosses"
    return (
        f"{what} is already true now, so it did not fire; it will fire when {crosses}"
        f" {human_number(alert.threshold)} again after moving back."
    )


def _notification(outcome: Outcome, readings: Readings) -> NewNotification:
    name, currency = (None, None)
    if outcome.portfolio_id is not None:
        name, currency = readings.portfolio_labels.get(outcome.portfolio_id, (None, None))
    what = describe(
        outcome.kind,
        outcome.threshold,
        symbol=outcome.symbol,
        direction=outcome.direction,
        window=outcome.window,
        portfolio=name,
        currency=currency,
    )
    unit = f" {currency}" if currency else ""
    if outcome.kind == Kind.CHANGE_PCT:
        now = f"moved {outcome.value:+.2f} % within {outcome.window}"
    elif outcome.kind in (Kind.FEAR_GREED_ABOVE, Kind.FEAR_GREED_BELOW):
        now = f"the index is {human_number(outcome.value)}"
    elif outcome.kind in PORTFOLIO_VALUE_KINDS:
        now = f"now {human_number(outcome.value)}{unit}"
    elif outcome.kind == Kind.PORTFOLIO_RETURN_BELOW and outcome.peak:
        down = (outcome.peak - outcome.value) / outcome.peak * _HUNDRED
        now = f"now {human_number(outcome.value)}{unit}, {down:.2f} % below its peak of {human_number(outcome.peak)}"
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
    if outcome.portfolio_id is not None:
        data["portfolio_id"] = str(outcome.portfolio_id)
    return NewNotification(
        user_id=outcome.user_id,
        kind="alert",
        title=f"Alert: {what}",
        body=body,
        data=data,
        alert_id=outcome.alert_id,
    )


__all__ = [
    "AlertChanges",
    "AlertSpec",
    "Created",
    "Evaluation",
    "InvalidAlert",
    "PortfolioValuer",
    "PriceAlertService",
]
