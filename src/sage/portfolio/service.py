"""The shadow portfolio as a paper-trading ledger: portfolios, booking, editing history,
valuation. (CSV import/export, performance and the deprecated positions API are in
`sage.portfolio.ledger_io`, `performance` and `legacy`.)

Every write locks the portfolio's row (`SELECT ... FOR UPDATE`), replays the whole history
with the change in place, and writes only when the replay holds (no overselling, no cash
going negative at any point). So concurrent trades on one portfolio queue up and can never
overdraw it, and a past trade or an edit is checked against everything that followed it.
A trade that comes after the whole history (a market order, a trade recorded "now") is
checked by applying it to the cached final state of the version read under the lock,
which is that same replay (sage.portfolio.state). Reads replay only when the ledger's
version changed since the last read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sage.errors import Conflict, NotFound
from sage.market.reader import MarketReader, PriceQuote, SymbolValidator
from sage.market.symbols import split_symbol
from sage.portfolio import checkpoints, points
from sage.portfolio.book import (
    Booked,
    InvalidTransaction,
    PriceRefused,
    TradeRequest,
    appends,
    as_stored,
    check_appended,
    check_state,
    checked_time,
    entry_of,
    invalid_field,
    key_query,
    load_entries,
    lock_portfolio,
    new_row,
)
from sage.portfolio.daily import DayReturns, day_returns
from sage.portfolio.ledger import NEW_SEQ, Entry, Ledger
from sage.portfolio.ledger_io import ImportResult, export_csv, import_csv
from sage.portfolio.orders import prepare_order
from sage.portfolio.performance import RANGES, KeptCloses, Performance, grid, series, value, wanted, window
from sage.portfolio.portfolios import PortfolioDirectory
from sage.portfolio.state import LedgerState, StateCache, Tip
from sage.portfolio.valuation import PortfolioSummary, summarize
from sage.singleflight import SingleFlight
from sage.store.db import Database
from sage.store.portfolio_tables import Portfolio, PortfolioTransaction

log = logging.getLogger(__name__)

# a series' snapshot: the version and the time of the first transaction (the "all" range's start)
_SERIES_HEAD_SQL = """SELECT p.ledger_version,
       (SELECT min(t.executed_at) FROM portfolio_transactions t WHERE t.portfolio_id = p.id)
FROM portfolios p WHERE p.id = $1"""

__all__ = [
    "Booked",
    "InvalidTransaction",
    "PortfolioService",
    "PortfolioSummary",
    "PriceRefused",
    "TradeRequest",
    "summarize",
]


class PortfolioService(PortfolioDirectory):
    """Portfolios (from PortfolioDirectory), their ledgers, valuation and performance."""

    def __init__(
        self,
        db: Database,
        market: MarketReader,
        symbols: SymbolValidator,
        *,
        fee_rate: Decimal,
        starting_cash: Decimal,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.market = market
        self.symbols = symbols
        self.fee_rate = fee_rate
        self.starting_cash = starting_cash
        self.clock = clock
        self.states = StateCache()
        self.closes = KeptCloses(points.STORE_AFTER)
        # concurrent identical reads compute once (keys name the ledger_version they read)
        self.tips: SingleFlight[Tip] = SingleFlight()
        self.series: SingleFlight[Performance] = SingleFlight()
        self.summaries: SingleFlight[PortfolioSummary] = SingleFlight()

    # -- the ledger ---------------------------------------------------------------------------------
    async def transactions(
        self,
        user_id: uuid.UUID,
        portfolio_id: uuid.UUID | None = None,
        *,
        limit: int = 100,
        symbol: str | None = None,
        offset: int = 0,
    ) -> list[PortfolioTransaction]:
        """Newest first."""
        portfolio = await self.resolve(user_id, portfolio_id, create=False)
        if portfolio is None:
            return []
        query = select(PortfolioTransaction).where(PortfolioTransaction.portfolio_id == portfolio.id)
        if symbol is not None:
            query = query.where(PortfolioTransaction.symbol == symbol)
        query = query.order_by(PortfolioTransaction.executed_at.desc(), PortfolioTransaction.seq.desc())
        async with self.db.session() as session:
            return list((await session.execute(query.offset(offset).limit(limit))).scalars())

    async def ledger(self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None = None) -> Ledger:
        found = await self._read_ledger(user_id, portfolio_id)
        if found is None:
            return Ledger()
        ledger = found[1]
        return replace(ledger, holdings=dict(ledger.holdings))

    async def prepare(self, request: TradeRequest) -> TradeRequest:
        """Validate and complete a request outside any lock (see sage.portfolio.orders)."""
        return await prepare_order(request, self.symbols, self.market, self.fee_rate, self.clock())

    async def book(
        self,
        user_id: uuid.UUID,
        portfolio_id: uuid.UUID | None,
        request: TradeRequest,
        *,
        idempotency_key: str | None = None,
    ) -> Booked:
        """Book one transaction; with an idempotency key, a retry returns the original booking
        (checked before pricing too, so a retry after the price went stale still answers)."""
        portfolio, original = await self._target(user_id, portfolio_id, idempotency_key)
        if original is not None:
            return Booked(_same_request(original, request), replayed=True)
        ready = await self.prepare(request)
        if ready.symbol is not None and split_symbol(ready.symbol)[1] != portfolio.base_currency:
            raise invalid_field(
                "symbol", f"{ready.symbol} is not quoted in the portfolio's base currency {portfolio.base_currency}"
            )
        try:
            async with self.db.session() as session:
                locked = await lock_portfolio(session, user_id, portfolio.id)
                if idempotency_key is not None:
                    original = await session.scalar(key_query(portfolio.id, idempotency_key))
                    if original is not None:  # a concurrent request with the key won the lock first
                        return Booked(_same_request(original, request), replayed=True)
                entry = as_stored(entry_of(ready))
                version = locked.ledger_version
                state = self.states.get(portfolio.id, version)
                tip = self.states.tip(portfolio.id, version) if state is None else None
                if tip is None and state is None:
                    # the latest checkpoint and what follows it, read under the lock (this version)
                    read = await checkpoints.read_ledger(session, portfolio.id)
                    tip = Tip(read.version, read.ledger, read.last_at)
                after: Ledger | None = None
                replayed: tuple[LedgerState, list[tuple[int, Ledger]]] | None = None
                if state is not None and appends(state, entry):
                    after = check_appended(state, entry)
                elif tip is not None and tip.appends(entry):
                    after = check_appended(tip.ledger, entry)
                else:
                    replayed = check_state([*await load_entries(session, portfolio.id), entry])
                row = new_row(portfolio.id, ready, idempotency_key)
                session.add(row)
                await session.flush()  # the insert's RETURNING gives the row its seq
                written = None
                if replayed is not None:
                    booked_entry = replace(entry, ref=row.id, seq=row.seq)
                    written = await self._precompute(session, portfolio.id, *replayed, {entry: booked_entry})
                await session.commit()
            if written is not None:
                self.states.put(portfolio.id, written)
            if after is not None:
                # the lock held the version still: this insert (one statement) made it + 1
                booked = replace(entry, ref=row.id, seq=row.seq)
                if state is not None:
                    self.states.put(portfolio.id, state.appended(booked, after, version + 1))
                else:
                    self.states.put_tip(portfolio.id, Tip(version + 1, after, booked.executed_at))
            return Booked(row, replayed=False)
        except IntegrityError:
            # the unique (portfolio, key) constraint: the lock makes this unreachable in practice
            original = await self._by_key(portfolio.id, idempotency_key) if idempotency_key else None
            if original is None:
                raise
            return Booked(_same_request(original, request), replayed=True)

    async def _target(
        self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None, key: str | None
    ) -> tuple[Portfolio, PortfolioTransaction | None]:
        """The portfolio to book into and the transaction already booked under `key`, in one
        pooled connection (a burst of orders waits for connections, not for queries)."""
        async with self.db.session() as session:
            query = select(Portfolio).where(Portfolio.user_id == user_id)
            query = (
                query.where(Portfolio.id == portfolio_id)
                if portfolio_id is not None
                else query.where(Portfolio.is_default)
            )
            portfolio = await session.scalar(query)
            if portfolio is not None and key is not None:
                return portfolio, await session.scalar(key_query(portfolio.id, key))
        if portfolio is None:
            if portfolio_id is not None:
                raise NotFound("No such portfolio")
            portfolio = await self.default(user_id)
            assert portfolio is not None
        return portfolio, None

    async def _by_key(self, portfolio_id: uuid.UUID, key: str) -> PortfolioTransaction | None:
        async with self.db.session() as session:
            return await session.scalar(key_query(portfolio_id, key))

    async def delete_transaction(self, user_id: uuid.UUID, portfolio_id: uuid.UUID, tx_id: uuid.UUID) -> None:
        """Remove one transaction; refused (422) when the rest of history would not hold without it."""
        async with self.db.session() as session:
            await lock_portfolio(session, user_id, portfolio_id)
            entries = await load_entries(session, portfolio_id)
            if not any(e.ref == tx_id for e in entries):
                raise NotFound("No such transaction in this portfolio")
            replayed = check_state([e for e in entries if e.ref != tx_id])
            await session.execute(delete(PortfolioTransaction).where(PortfolioTransaction.id == tx_id))
            written = await self._precompute(session, portfolio_id, *replayed)
            await session.commit()
        self.states.put(portfolio_id, written)

    async def correct_transaction(
        self, user_id: uuid.UUID, portfolio_id: uuid.UUID, tx_id: uuid.UUID, changes: dict[str, object]
    ) -> PortfolioTransaction:
        """Change a recorded transaction's quantity, price, fee, time or note; everything after
        it is re-checked. The kind and symbol stay (delete and book again to change those)."""
        async with self.db.session() as session:
            await lock_portfolio(session, user_id, portfolio_id)
            row = await session.scalar(
                select(PortfolioTransaction).where(
                    PortfolioTransaction.id == tx_id, PortfolioTransaction.portfolio_id == portfolio_id
                )
            )
            if row is None:
                raise NotFound("No such transaction in this portfolio")
            if "price" in changes and row.kind in ("deposit", "withdraw"):
                raise invalid_field("price", f"a {row.kind} has no price")
            if changes.get("fee") not in (None, Decimal(0)) and row.kind in ("deposit", "withdraw"):
                raise invalid_field("fee", f"a {row.kind} has no fee")
            for name in ("quantity", "price", "fee", "note"):
                if name in changes and changes[name] is not None:
                    setattr(row, name, changes[name])
            if changes.get("executed_at") is not None:
                row.executed_at = checked_time(changes["executed_at"], self.clock())  # type: ignore[arg-type]
            entries = [e for e in await load_entries(session, portfolio_id) if e.ref != tx_id]
            # it keeps its booking order (seq) among transactions of the same time
            corrected = Entry(row.kind, row.symbol, row.quantity, row.price, row.fee, row.executed_at, row.id, row.seq)
            replayed = check_state([*entries, corrected])
            await session.flush()
            written = await self._precompute(session, portfolio_id, *replayed)
            await session.commit()
        self.states.put(portfolio_id, written)
        return row

    async def _precompute(
        self,
        session: AsyncSession,
        portfolio_id: uuid.UUID,
        replayed: LedgerState,
        snapshots: list[tuple[int, Ledger]],
        booked: dict[Entry, Entry] | None = None,
    ) -> LedgerState:
        """After a write that replayed the history (under the row lock, flushed, not committed):
        its full state labelled with the version the write made, and its checkpoints stored in
        the same transaction. So the first read after a back-dated write, a correction or a
        deletion is warm in this process, and a summary in any process reads a checkpoint
        (`booked`: the new transaction as it was checked -> as it was stored, with its seq)."""
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        # read, not assumed: a statement that changed nothing did not bump it
        version = int(await raw.fetchval("SELECT ledger_version FROM portfolios WHERE id = $1", portfolio_id))  # type: ignore[union-attr]
        entries = replayed.entries
        if booked:
            entries = tuple(booked.get(e, e) if e.seq == NEW_SEQ else e for e in entries)
        written = LedgerState(version, entries, replayed.ledger, replayed.timeline)
        await checkpoints.insert(raw, portfolio_id, version, checkpoints.of_snapshots(entries, snapshots, 0))
        return written

    async def import_csv(self, user_id: uuid.UUID, portfolio_id: uuid.UUID, text: str) -> ImportResult:
        """Book every row of a CSV file, or none (see sage.portfolio.ledger_io)."""
        return await import_csv(self.db, self.symbols, user_id, portfolio_id, text, self.clock())

    async def export_csv(self, user_id: uuid.UUID, portfolio_id: uuid.UUID) -> str:
        portfolio = await self.get(user_id, portfolio_id)
        return await export_csv(self.db, portfolio.id)

    # -- valuation ----------------------------------------------------------------------------------
    async def summary(self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None = None) -> PortfolioSummary | None:
        """The portfolio valued now; None when the user has no portfolio yet (and none was named)."""
        found = await self._read_ledger(user_id, portfolio_id)
        if found is None:
            return None
        portfolio, ledger = found

        async def valued() -> PortfolioSummary:
            holdings = sorted(ledger.holdings.values(), key=lambda h: h.symbol)
            quotes = await self.quotes([h.symbol for h in holdings])
            return summarize(
                holdings,
                quotes,
                self.clock(),
                ledger=ledger,
                portfolio_id=portfolio.id,
                name=portfolio.name,
                base_currency=portfolio.base_currency,
            )

        # callers asking at once for the same version share one valuation (at the prices the
        # first of them read); the key holds everything else the summary shows
        key = (portfolio.id, portfolio.ledger_version, portfolio.name, portfolio.base_currency)
        return await self.summaries.run(key, valued)

    async def performance(
        self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None = None, range_: str = "1m"
    ) -> Performance | None:
        """Value series, time-weighted return, max drawdown and the BTC benchmark over `range_`
        (1d, 1w, 1m, 3m, 1y, all); None when the user has no portfolio yet (and none was named)."""
        if range_ not in RANGES:
            raise invalid_field("range", f"range must be one of {', '.join(RANGES)}")
        portfolio = await self._portfolio(user_id, portfolio_id)
        if portfolio is None:
            return None
        # callers asking at once for the same version and range share one computation: the
        # series of the first of them (its `now` is at most one computation older)
        return await self.series.run(
            (portfolio.id, portfolio.ledger_version, range_), lambda: self._series(portfolio, range_)
        )

    async def _series(self, portfolio: Portfolio, range_: str) -> Performance:
        """The points stored for the range (sage.portfolio.points) and, for the others, the
        ledger's state at their times, read in one snapshot with the version; those valued at
        closes probed now, and the settled ones stored for every later reader."""
        now = self.clock()
        async with self.db.session() as session:
            connection = await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            raw = (await connection.get_raw_connection()).driver_connection
            head = await raw.fetchrow(_SERIES_HEAD_SQL, portfolio.id)  # type: ignore[union-attr]
            if head is None:
                raise NotFound("No such portfolio")
            version, first = int(head[0]), head[1]
            start, step = window(
                range_, now, portfolio.created_at if first is None else min(first, portfolio.created_at)
            )
            times = grid(start, now, step)
            stored = await points.read(raw, portfolio.id, step, times)
            fresh = [t for t in times if t not in stored]
            kept: list[checkpoints.Checkpoint] = []
            cached = self.states.get(portfolio.id, version)
            if not fresh:
                states = []
            elif cached is not None:
                states = cached.timeline.states_at(fresh)
            else:
                states, kept = await checkpoints.states_at(raw, portfolio.id, fresh)
        boundaries = set(times[1:-1])  # the range's start and end move with the clock: never stored
        closes = await self.closes.closes(self.db, wanted(fresh, states), step, boundaries)
        valued = dict(zip(fresh, value(fresh, states, closes.prices), strict=True))
        settled = [v for t, v in valued.items() if t in boundaries]
        if settled and closes.epoch is not None and closes.read_at is not None:
            await points.store(
                self.db,
                portfolio.id,
                step,
                settled,
                version=version,
                epoch=closes.epoch,
                read_at=closes.read_at,
                now=now,
            )
        await checkpoints.store(self.db, portfolio.id, version, tuple(kept))
        return series(range_, start, now, step, [stored[t] if t in stored else valued[t] for t in times])

    async def _portfolio(self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None) -> Portfolio | None:
        """The portfolio (named: 404 when not the user's; else the default, None when there is
        none), with its ledger_version."""
        async with self.db.session() as session:
            query = select(Portfolio).where(Portfolio.user_id == user_id)
            if portfolio_id is not None:
                query = query.where(Portfolio.id == portfolio_id)
            else:
                query = query.where(Portfolio.is_default)
            portfolio = await session.scalar(query)
        if portfolio is None and portfolio_id is not None:
            raise NotFound("No such portfolio")
        return portfolio

    async def _read_ledger(self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None) -> tuple[Portfolio, Ledger] | None:
        """The portfolio and its final ledger (what a summary needs): cached for the current
        ledger_version, else the latest persisted checkpoint and the transactions after it
        (sage.portfolio.checkpoints), replayed once however many read it at the same time."""
        portfolio = await self._portfolio(user_id, portfolio_id)
        if portfolio is None:
            return None
        tip = self.states.tip(portfolio.id, portfolio.ledger_version)
        if tip is None:
            tip = await self.tips.run((portfolio.id, portfolio.ledger_version), lambda: self._load_tip(portfolio.id))
        return portfolio, tip.ledger

    async def _load_tip(self, portfolio_id: uuid.UUID) -> Tip:
        async with self.db.session() as session:
            replayed = await checkpoints.read_ledger(session, portfolio_id)
        tip = Tip(replayed.version, replayed.ledger, replayed.last_at)
        self.states.put_tip(portfolio_id, tip)
        await checkpoints.store(self.db, portfolio_id, replayed.version, replayed.checkpoints)
        return tip

    async def day_returns(self, day: date) -> DayReturns:
        """Every portfolio's return over one UTC day (no identities), for the business summary."""
        return await day_returns(self.db, day)

    async def quotes(self, symbols: Sequence[str]) -> dict[str, PriceQuote]:
        if not symbols:
            return {}
        try:
            return {q.symbol: q for q in await self.market.consolidated(sorted(set(symbols)))}
        except Exception as exc:  # a market outage must not hide the holdings themselves
            log.warning("portfolio prices unavailable", extra={"error": type(exc).__name__})
            return {}


def _same_request(original: PortfolioTransaction, request: TradeRequest) -> PortfolioTransaction:
    """A key reused for a different transaction is the client's bug: say so instead of
    silently returning something else."""
    if original.kind != request.kind or original.quantity != request.quantity:
        raise Conflict(
            "This Idempotency-Key was already used for a different transaction",
            details={"transaction_id": str(original.id)},
        )
    return original
