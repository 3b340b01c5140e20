"""Writing to one portfolio's ledger: the lock, the history, and the check that it holds.

Shared by the service, the CSV import and the deprecated positions API, so every write
goes through the same rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from sage.errors import NotFound, SageError
from sage.portfolio import checkpoints
from sage.portfolio.ledger import NEW_SEQ, Entry, Ledger, LedgerError, ordered, replay, to_places
from sage.portfolio.state import LedgerState, derive
from sage.store.portfolio_tables import Portfolio, PortfolioTransaction

FEE_QUANTUM = Decimal("1e-18")
MAX_AMOUNT = Decimal("1e20")  # NUMERIC(38, 18) holds 20 integer digits
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)  # the first bitcoin block: no trade is older
CLOCK_SKEW = timedelta(minutes=1)

_LEDGER_SQL = (
    "SELECT id, kind, symbol, quantity, price, fee, executed_at, seq FROM portfolio_transactions"
    " WHERE portfolio_id = $1 ORDER BY executed_at, seq"
)
# The history and the version it is (one statement, so one snapshot: a write committed
# between two statements could otherwise label one version's rows with another's number).
# A portfolio without transactions is one row of NULLs after the version.
_VERSIONED_LEDGER_SQL = (
    "SELECT p.ledger_version, t.id, t.kind, t.symbol, t.quantity, t.price, t.fee, t.executed_at, t.seq"
    " FROM portfolios p LEFT JOIN portfolio_transactions t ON t.portfolio_id = p.id"
    " WHERE p.id = $1 ORDER BY t.executed_at, t.seq"
)


class InvalidTransaction(SageError):
    """The history would not hold: overselling, overspending, or a malformed transaction."""

    status = 422
    code = "invalid_transaction"


class InvalidInput(SageError):
    """A field of the request is unusable (the API's usual 422 validation error)."""

    status = 422
    code = "validation_error"


class PriceRefused(SageError):
    """A market order cannot fill: no fresh, agreed consolidated price right now."""

    status = 409
    code = "price_unavailable"


@dataclass(frozen=True)
class TradeRequest:
    kind: str  # buy | sell | deposit | withdraw
    quantity: Decimal  # deposit/withdraw: the amount of base currency
    symbol: str | None = None
    price: Decimal | None = None  # None on a buy/sell: a market order at the consolidated price
    executed_at: datetime | None = None  # None: now
    fee: Decimal | None = None  # None: SAGE_PORTFOLIO_FEE_RATE of the notional
    note: str | None = None


@dataclass(frozen=True)
class Booked:
    transaction: PortfolioTransaction
    replayed: bool  # True: the Idempotency-Key was seen before; this is the original booking


async def load_entries(session: AsyncSession, portfolio_id: uuid.UUID) -> list[Entry]:
    """The history in execution order (time, then booking order).

    Read through the session's asyncpg connection itself: the whole ledger is read on every
    summary and every write, and asyncpg's records cost a fifth of ORM rows for 10,000 of them
    (bench/bench_portfolio.py); same connection, same transaction and lock."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    rows = await raw.driver_connection.fetch(_LEDGER_SQL, portfolio_id)  # type: ignore[union-attr]
    return [Entry(r[1], r[2], r[3], r[4], r[5], r[6], r[0], r[7]) for r in rows]


async def load_history(session: AsyncSession, portfolio_id: uuid.UUID) -> tuple[int, list[Entry]]:
    """The ledger_version and the history it is, in execution order (one statement)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    rows = await raw.driver_connection.fetch(_VERSIONED_LEDGER_SQL, portfolio_id)  # type: ignore[union-attr]
    if not rows:
        raise NotFound("No such portfolio")
    entries = [Entry(r[2], r[3], r[4], r[5], r[6], r[7], r[1], r[8]) for r in rows if r[1] is not None]
    return int(rows[0][0]), entries


async def load_state(session: AsyncSession, portfolio_id: uuid.UUID) -> LedgerState:
    """The history replayed once (sage.portfolio.state), labelled with its ledger_version."""
    version, entries = await load_history(session, portfolio_id)
    return derive(entries, version)


def check(entries: Sequence[Entry]) -> Ledger:
    """Replay `entries` (any order); an entry the history cannot hold is a 422 naming it."""
    try:
        return replay(ordered(entries))
    except LedgerError as exc:
        raise _invalid(exc) from exc


def check_state(entries: Sequence[Entry]) -> tuple[LedgerState, list[tuple[int, Ledger]]]:
    """`check`, keeping what the replay derives: the full state (its version to be set by the
    caller) and the ledger after every PERSIST_EVERY-th transaction and the last, to persist."""
    snapshots: list[tuple[int, Ledger]] = []
    try:
        return derive(ordered(entries), snapshots=(checkpoints.PERSIST_EVERY, snapshots)), snapshots
    except LedgerError as exc:
        raise _invalid(exc) from exc


def as_stored(entry: Entry) -> Entry:
    """`entry` as PostgreSQL reads it back: amounts at NUMERIC(38, 18)'s 18 places (the same
    value; the exponent matters for how a derived Decimal prints) and the time in UTC."""
    return replace(
        entry,
        quantity=to_places(entry.quantity),
        price=None if entry.price is None else to_places(entry.price),
        fee=to_places(entry.fee),
        executed_at=entry.executed_at.astimezone(UTC),
    )


def appends(state: LedgerState, entry: Entry) -> bool:
    """Whether `entry` (not booked yet: seq NEW_SEQ) sorts after the whole history."""
    return not state.entries or entry.executed_at >= state.entries[-1].executed_at


def check_appended(state: LedgerState | Ledger, entry: Entry) -> Ledger:
    """`check([*history, entry])` for an entry that sorts after the whole history (`appends`)
    given the history's final state: the stored history held when it was written and nothing
    in it comes after the entry, so applying the entry to (a copy of) the final state is the
    same replay without the 10,000 steps before it."""
    final = state.ledger if isinstance(state, LedgerState) else state
    ledger = replace(final, holdings=dict(final.holdings))
    try:
        ledger.apply(entry)
    except LedgerError as exc:
        raise _invalid(exc) from exc
    return ledger


def _invalid(exc: LedgerError) -> InvalidTransaction:
    ref = exc.ref
    where = f"row {ref}" if isinstance(ref, int) else "the new transaction" if ref is None else f"transaction {ref}"
    return InvalidTransaction(
        f"{where} {exc.reason}",
        details=[{"field": "transaction", "transaction": None if ref is None else str(ref), "message": exc.reason}],
    )


async def lock_portfolio(session: AsyncSession, user_id: uuid.UUID, portfolio_id: uuid.UUID) -> Portfolio:
    """The portfolio's row, locked until the transaction ends: writers of one portfolio queue here."""
    portfolio = await session.scalar(
        select(Portfolio).where(Portfolio.id == portfolio_id, Portfolio.user_id == user_id).with_for_update()
    )
    if portfolio is None:
        raise NotFound("No such portfolio")
    return portfolio


def invalid_field(name: str, message: str) -> InvalidInput:
    return InvalidInput(message, details=[{"field": name, "message": message}])


def checked_time(executed_at: datetime | None, now: datetime) -> datetime:
    if executed_at is None:
        return now
    if executed_at.tzinfo is None:
        raise invalid_field("executed_at", "executed_at needs a time zone (e.g. 2024-03-01T10:00:00Z)")
    if executed_at > now + CLOCK_SKEW:
        raise invalid_field("executed_at", "executed_at is in the future")
    if executed_at < EARLIEST:
        raise invalid_field("executed_at", "executed_at is before any crypto market existed")
    return executed_at


def entry_of(request: TradeRequest) -> Entry:
    assert request.executed_at is not None and request.fee is not None
    return Entry(
        request.kind, request.symbol, request.quantity, request.price, request.fee, request.executed_at, None, NEW_SEQ
    )


def new_row(portfolio_id: uuid.UUID, request: TradeRequest, key: str | None) -> PortfolioTransaction:
    assert request.executed_at is not None and request.fee is not None
    return PortfolioTransaction(
        id=uuid.uuid4(),
        portfolio_id=portfolio_id,
        kind=request.kind,
        symbol=request.symbol,
        quantity=request.quantity,
        price=request.price,
        fee=request.fee,
        executed_at=request.executed_at,
        note=request.note,
        idempotency_key=key,
    )


def key_query(portfolio_id: uuid.UUID, key: str) -> Select[PortfolioTransaction]:
    return select(PortfolioTransaction).where(
        PortfolioTransaction.portfolio_id == portfolio_id, PortfolioTransaction.idempotency_key == key
    )
