"""The shadow portfolio: paper positions per user, valued at consolidated prices.

A position is (symbol, quantity, average cost). The summary values each position at the
market's consolidated price; positions without a price are listed but left out of the
totals (and `priced_all` says so), so the chat never presents a partial total as whole.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from sage.errors import Conflict, NotFound
from sage.market.reader import MarketReader, PriceQuote
from sage.store.chat_tables import PortfolioPosition
from sage.store.db import Database

log = logging.getLogger(__name__)

MAX_POSITIONS = 100
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class PositionValue:
    symbol: str
    quantity: Decimal
    average_cost: Decimal
    cost: Decimal
    price: Decimal | None
    value: Decimal | None
    pnl: Decimal | None
    pnl_pct: Decimal | None
    weight_pct: Decimal | None  # share of the priced total value
    price_as_of: datetime | None
    stale: bool


@dataclass(frozen=True)
class PortfolioSummary:
    positions: tuple[PositionValue, ...]
    total_value: Decimal
    total_cost: Decimal
    total_pnl: Decimal
    total_pnl_pct: Decimal | None
    priced_all: bool
    as_of: datetime


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if whole == 0 else part / whole * _HUNDRED


def summarize(positions: list[PortfolioPosition], quotes: dict[str, PriceQuote], now: datetime) -> PortfolioSummary:
    """Value and P&L of `positions` at `quotes` (pure; the service and tests call it)."""
    rows: list[PositionValue] = []
    total_value = Decimal(0)
    total_cost = Decimal(0)
    for position in positions:
        cost = position.quantity * position.average_cost
        quote = quotes.get(position.symbol)
        if quote is None:
            rows.append(
                PositionValue(
                    position.symbol,
                    position.quantity,
                    position.average_cost,
                    cost,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    False,
                )
            )
            continue
        value = position.quantity * quote.price
        total_value += value
        total_cost += cost
        rows.append(
            PositionValue(
                symbol=position.symbol,
                quantity=position.quantity,
                average_cost=position.average_cost,
                cost=cost,
                price=quote.price,
                value=value,
                pnl=value - cost,
                pnl_pct=_pct(value - cost, cost),
                weight_pct=None,
                price_as_of=quote.as_of,
                stale=quote.stale,
            )
        )
    weighted = tuple(
        replace(row, weight_pct=_pct(row.value, total_value)) if row.value is not None else row for row in rows
    )
    total_pnl = total_value - total_cost
    return PortfolioSummary(
        positions=weighted,
        total_value=total_value,
        total_cost=total_cost,
        total_pnl=total_pnl,
        total_pnl_pct=_pct(total_pnl, total_cost),
        priced_all=all(row.price is not None for row in rows),
        as_of=now,
    )


class PortfolioService:
    def __init__(self, db: Database, market: MarketReader) -> None:
        self.db = db
        self._market = market

    async def positions(self, user_id: uuid.UUID) -> list[PortfolioPosition]:
        async with self.db.session() as session:
            result = await session.execute(
                select(PortfolioPosition).where(PortfolioPosition.user_id == user_id).order_by(PortfolioPosition.symbol)
            )
            return list(result.scalars())

    async def upsert(
        self, user_id: uuid.UUID, *, symbol: str, quantity: Decimal, average_cost: Decimal
    ) -> PortfolioPosition:
        """Create or replace the position in `symbol` (PUT semantics)."""
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(PortfolioPosition).where(PortfolioPosition.user_id == user_id)
            )
            exists = await session.scalar(
                select(PortfolioPosition.id).where(
                    PortfolioPosition.user_id == user_id, PortfolioPosition.symbol == symbol
                )
            )
            if exists is None and (count or 0) >= MAX_POSITIONS:
                raise Conflict(f"A portfolio holds at most {MAX_POSITIONS} positions", details={"limit": MAX_POSITIONS})
            now = datetime.now(UTC)
            statement = (
                insert(PortfolioPosition)
                .values(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    symbol=symbol,
                    quantity=quantity,
                    average_cost=average_cost,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_update(
                    constraint="uq_portfolio_positions_user_id_symbol",
                    set_={"quantity": quantity, "average_cost": average_cost, "updated_at": now},
                )
                .returning(PortfolioPosition)
            )
            row = (await session.execute(statement)).scalar_one()
            await session.commit()
            return row

    async def delete(self, user_id: uuid.UUID, symbol: str) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(PortfolioPosition)
                .where(PortfolioPosition.user_id == user_id, PortfolioPosition.symbol == symbol)
                .returning(PortfolioPosition.id)
            )
            removed = result.first()
            await session.commit()
        if removed is None:
            raise NotFound(f"No position in {symbol}")

    async def clear(self, user_id: uuid.UUID) -> int:
        async with self.db.session() as session:
            result = await session.execute(
                delete(PortfolioPosition).where(PortfolioPosition.user_id == user_id).returning(PortfolioPosition.id)
            )
            removed = len(result.all())
            await session.commit()
        return removed

    async def summary(self, user_id: uuid.UUID) -> PortfolioSummary | None:
        """None when the user holds no positions."""
        positions = await self.positions(user_id)
        if not positions:
            return None
        quotes: dict[str, PriceQuote] = {}
        try:
            for quote in await self._market.consolidated(sorted({p.symbol for p in positions})):
                quotes[quote.symbol] = quote
        except Exception as exc:  # a market outage must not hide the positions themselves
            log.warning("portfolio prices unavailable", extra={"error": type(exc).__name__})
        return summarize(positions, quotes, datetime.now(UTC))
