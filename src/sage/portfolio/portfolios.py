"""A user's portfolios: listing, the default one (created on first use), create, rename,
make default, delete. Mixed into `PortfolioService`, which holds the attributes declared here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sage.errors import Conflict, NotFound
from sage.portfolio.book import lock_portfolio
from sage.store.db import Database
from sage.store.portfolio_tables import Portfolio, PortfolioTransaction

MAX_PORTFOLIOS = 20
DEFAULT_NAME = "Default"


class PortfolioDirectory:
    db: Database
    starting_cash: Decimal
    clock: Callable[[], datetime]

    async def portfolios(self, user_id: uuid.UUID) -> list[Portfolio]:
        """The user's portfolios, oldest first; a default one is created on first use."""
        await self.default(user_id)
        async with self.db.session() as session:
            rows = await session.execute(
                select(Portfolio).where(Portfolio.user_id == user_id).order_by(Portfolio.created_at, Portfolio.id)
            )
            return list(rows.scalars())

    async def default(self, user_id: uuid.UUID, *, create: bool = True) -> Portfolio | None:
        async with self.db.session() as session:
            found = await session.scalar(select(Portfolio).where(Portfolio.user_id == user_id, Portfolio.is_default))
            if found is not None or not create:
                return found
            # concurrent first uses: the partial unique index lets exactly one insert win
            created = await self._insert(session, user_id, DEFAULT_NAME, "USDT", self.starting_cash, default=True)
            if created is None:
                await session.rollback()
                found = await session.scalar(
                    select(Portfolio).where(Portfolio.user_id == user_id, Portfolio.is_default)
                )
                if found is not None:
                    return found
                raise Conflict("A portfolio is already named Default; rename it or make it the default")
            await session.commit()
            return created

    async def create(
        self,
        user_id: uuid.UUID,
        *,
        name: str,
        base_currency: str = "USDT",
        starting_cash: Decimal | None = None,
        make_default: bool = False,
    ) -> Portfolio:
        await self.default(user_id)
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(Portfolio).where(Portfolio.user_id == user_id)
            )
            if (count or 0) >= MAX_PORTFOLIOS:
                raise Conflict(f"A user has at most {MAX_PORTFOLIOS} portfolios", details={"limit": MAX_PORTFOLIOS})
            cash = self.starting_cash if starting_cash is None else starting_cash
            created = await self._insert(session, user_id, name, base_currency, cash, default=False)
            if created is None:
                raise Conflict(f"A portfolio named {name!r} already exists")
            if make_default:
                await self._make_default(session, user_id, created.id)
                created.is_default = True
            await session.commit()
            return created

    async def _insert(
        self, session: AsyncSession, user_id: uuid.UUID, name: str, base: str, cash: Decimal, *, default: bool
    ) -> Portfolio | None:
        now = self.clock()
        statement = (
            insert(Portfolio)
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                name=name,
                base_currency=base,
                starting_cash=cash,
                is_default=default,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(Portfolio)
        )
        created = (await session.execute(statement)).scalar_one_or_none()
        if created is not None and cash > 0:
            session.add(
                PortfolioTransaction(
                    portfolio_id=created.id,
                    kind="deposit",
                    quantity=cash,
                    fee=Decimal(0),
                    executed_at=now,
                    note="Starting cash",
                )
            )
            await session.flush()
        return created

    async def _make_default(self, session: AsyncSession, user_id: uuid.UUID, portfolio_id: uuid.UUID) -> None:
        await session.execute(
            update(Portfolio).where(Portfolio.user_id == user_id, Portfolio.is_default).values(is_default=False)
        )
        await session.execute(update(Portfolio).where(Portfolio.id == portfolio_id).values(is_default=True))

    async def get(self, user_id: uuid.UUID, portfolio_id: uuid.UUID) -> Portfolio:
        async with self.db.session() as session:
            found = await session.scalar(
                select(Portfolio).where(Portfolio.id == portfolio_id, Portfolio.user_id == user_id)
            )
        if found is None:
            raise NotFound("No such portfolio")
        return found

    async def find(self, user_id: uuid.UUID, ref: str) -> Portfolio | None:
        """One of the user's portfolios by its id or its name (exact, else the one matching
        case-insensitively); None when the user has none such (another user's is not found)."""
        try:
            by_id: uuid.UUID | None = uuid.UUID(ref.strip())
        except ValueError:
            by_id = None
        async with self.db.session() as session:
            if by_id is not None:
                found = await session.scalar(
                    select(Portfolio).where(Portfolio.id == by_id, Portfolio.user_id == user_id)
                )
                if found is not None:
                    return found
            named = list(
                (
                    await session.execute(
                        select(Portfolio).where(
                            Portfolio.user_id == user_id, func.lower(Portfolio.name) == ref.strip().lower()
                        )
                    )
                ).scalars()
            )
        exact = [p for p in named if p.name == ref.strip()]
        return exact[0] if exact else named[0] if len(named) == 1 else None

    async def resolve(
        self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None, *, create: bool = True
    ) -> Portfolio | None:
        """The named portfolio (404 when it is not the user's) or the default one."""
        if portfolio_id is not None:
            return await self.get(user_id, portfolio_id)
        return await self.default(user_id, create=create)

    async def update(
        self, user_id: uuid.UUID, portfolio_id: uuid.UUID, *, name: str | None = None, make_default: bool = False
    ) -> Portfolio:
        async with self.db.session() as session:
            portfolio = await lock_portfolio(session, user_id, portfolio_id)
            if name is not None and name != portfolio.name:
                taken = await session.scalar(
                    select(Portfolio.id).where(Portfolio.user_id == user_id, Portfolio.name == name)
                )
                if taken is not None:
                    raise Conflict(f"A portfolio named {name!r} already exists")
                portfolio.name = name
            if make_default and not portfolio.is_default:
                await self._make_default(session, user_id, portfolio_id)
            portfolio.updated_at = self.clock()
            await session.commit()
        return await self.get(user_id, portfolio_id)

    async def delete(self, user_id: uuid.UUID, portfolio_id: uuid.UUID) -> None:
        """Deleting the default makes the oldest remaining portfolio the default (a new one is
        created on next use when none remains)."""
        async with self.db.session() as session:
            portfolio = await lock_portfolio(session, user_id, portfolio_id)
            await session.execute(delete(Portfolio).where(Portfolio.id == portfolio_id))
            if portfolio.is_default:
                oldest = await session.scalar(
                    select(Portfolio.id).where(Portfolio.user_id == user_id).order_by(Portfolio.created_at).limit(1)
                )
                if oldest is not None:
                    await self._make_default(session, user_id, oldest)
            await session.commit()
