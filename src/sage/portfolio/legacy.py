"""The deprecated positions API (`/portfolio/positions/...`), kept for one release as an
alias of the user's default portfolio.

- "Set holding" (PUT): the difference between the wanted and the held quantity is booked
  as a trade at the given average cost, without a fee. Buying more than the cash covers
  first books a deposit of the shortfall (the old API had no cash), so the alias never
  fails for lack of cash. On an empty holding the result is exactly the quantity and
  average cost given; on an existing one the average cost is the weighted average of the
  two (a sell leaves the average cost unchanged and realizes `(given - average) x sold`).
- Delete: the whole holding is sold at its own average cost, without a fee (no P&L).
"""

from __future__ import annotations

import decimal
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from sage.errors import Conflict, NotFound
from sage.portfolio.book import MAX_AMOUNT, check, invalid_field, load_entries, lock_portfolio
from sage.portfolio.ledger import NEW_SEQ, PRECISION, Entry, Holding, Ledger, to_places
from sage.portfolio.service import PortfolioService
from sage.store.portfolio_tables import PortfolioTransaction

MAX_POSITIONS = 100
_ZERO = Decimal(0)
NOTE = "Booked through the deprecated positions API"


async def holdings(service: PortfolioService, user_id: uuid.UUID) -> list[Holding]:
    ledger = await service.ledger(user_id)
    return sorted(ledger.holdings.values(), key=lambda h: h.symbol)


async def set_holding(
    service: PortfolioService, user_id: uuid.UUID, symbol: str, quantity: Decimal, average_cost: Decimal
) -> Holding:
    symbol = await service.symbols.require(symbol)
    portfolio = await service.default(user_id)
    assert portfolio is not None
    now = service.clock()
    async with service.db.session() as session:
        await lock_portfolio(session, user_id, portfolio.id)
        entries = await load_entries(session, portfolio.id)
        ledger = check(entries)
        held = ledger.holdings.get(symbol)
        if held is None and len(ledger.holdings) >= MAX_POSITIONS:
            raise Conflict(f"A portfolio holds at most {MAX_POSITIONS} positions", details={"limit": MAX_POSITIONS})
        difference = quantity - (held.quantity if held is not None else _ZERO)
        with decimal.localcontext(prec=PRECISION):
            too_large = abs(difference) * average_cost >= MAX_AMOUNT
        if too_large:
            raise invalid_field("quantity", "quantity x average_cost is too large")
        new: list[PortfolioTransaction] = []
        if difference > 0:
            with decimal.localcontext(prec=PRECISION):
                shortfall = difference * average_cost - ledger.cash
            if shortfall > 0:
                new.append(_tx(portfolio.id, "deposit", None, to_places(shortfall, decimal.ROUND_CEILING), None, now))
            new.append(_tx(portfolio.id, "buy", symbol, difference, average_cost, now))
        elif difference < 0:
            new.append(_tx(portfolio.id, "sell", symbol, -difference, average_cost, now))
        result = await _write(session, entries, new)
        await session.commit()
    return result.holdings[symbol]


async def remove_holding(service: PortfolioService, user_id: uuid.UUID, symbol: str) -> None:
    portfolio = await service.default(user_id, create=False)
    if portfolio is None:
        raise NotFound(f"No position in {symbol}")
    async with service.db.session() as session:
        await lock_portfolio(session, user_id, portfolio.id)
        entries = await load_entries(session, portfolio.id)
        held = check(entries).holdings.get(symbol)
        if held is None:
            raise NotFound(f"No position in {symbol}")
        await _write(session, entries, [_close(portfolio.id, held, service)])
        await session.commit()


async def clear(service: PortfolioService, user_id: uuid.UUID) -> int:
    portfolio = await service.default(user_id, create=False)
    if portfolio is None:
        return 0
    async with service.db.session() as session:
        await lock_portfolio(session, user_id, portfolio.id)
        entries = await load_entries(session, portfolio.id)
        held = list(check(entries).holdings.values())
        await _write(session, entries, [_close(portfolio.id, h, service) for h in held])
        await session.commit()
    return len(held)


def _close(portfolio_id: uuid.UUID, held: Holding, service: PortfolioService) -> PortfolioTransaction:
    return _tx(portfolio_id, "sell", held.symbol, held.quantity, held.average_cost, service.clock())


def _tx(
    portfolio_id: uuid.UUID, kind: str, symbol: str | None, quantity: Decimal, price: Decimal | None, now: datetime
) -> PortfolioTransaction:
    return PortfolioTransaction(
        id=uuid.uuid4(),
        portfolio_id=portfolio_id,
        kind=kind,
        symbol=symbol,
        quantity=quantity,
        price=to_places(price) if price is not None else None,
        fee=_ZERO,
        executed_at=now,
        note=NOTE,
    )


async def _write(session: AsyncSession, entries: list[Entry], new: list[PortfolioTransaction]) -> Ledger:
    ledger = check(
        [
            *entries,
            *(
                Entry(t.kind, t.symbol, t.quantity, t.price, _ZERO, t.executed_at, t.id, NEW_SEQ + i)
                for i, t in enumerate(new)
            ),
        ]
    )
    session.add_all(new)
    await session.flush()
    return ledger
