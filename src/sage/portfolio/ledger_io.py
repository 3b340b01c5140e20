"""CSV import and export of a portfolio's transactions.

An import is one database transaction under the portfolio's lock: every row is parsed and
the whole history (existing transactions plus the file's) is replayed before anything is
written, so a bad row, an oversell or an overdraft anywhere rejects the file and writes
nothing. Each row carries an idempotency key derived from its content, so importing the
same file twice books its trades once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from sage.errors import SageError
from sage.market.reader import SymbolValidator
from sage.portfolio.book import check, load_entries, lock_portfolio
from sage.portfolio.csvio import CsvError, format_transactions, parse_transactions
from sage.portfolio.ledger import NEW_SEQ, Entry, LedgerError
from sage.store.db import Database
from sage.store.portfolio_tables import PortfolioTransaction

INSERT_CHUNK = 2_000


class ImportRejected(SageError):
    status = 422
    code = "import_rejected"


@dataclass(frozen=True)
class ImportResult:
    booked: int
    skipped: int  # rows already imported before (same content)


async def import_csv(
    db: Database, symbols: SymbolValidator, user_id: uuid.UUID, portfolio_id: uuid.UUID, text: str, now: datetime
) -> ImportResult:
    async with db.session() as session:
        portfolio = await lock_portfolio(session, user_id, portfolio_id)
        try:
            rows = parse_transactions(text, base_currency=portfolio.base_currency, now=now)
        except CsvError as exc:
            raise _rejected(exc.problems) from exc
        problems: list[tuple[int, str]] = []
        for symbol in sorted({r.symbol for r in rows if r.symbol is not None}):
            try:
                await symbols.require(symbol)
            except SageError as exc:
                problems.extend((r.row, exc.message) for r in rows if r.symbol == symbol)
        if problems:
            raise _rejected(sorted(problems)[:20])
        known = set(
            (
                await session.execute(
                    select(PortfolioTransaction.idempotency_key).where(
                        PortfolioTransaction.portfolio_id == portfolio_id,
                        PortfolioTransaction.idempotency_key.in_([r.key for r in rows]),
                    )
                )
            ).scalars()
        )
        fresh = [r for r in rows if r.key not in known]
        entries = await load_entries(session, portfolio_id)
        try:
            check(
                [
                    *entries,
                    *(
                        Entry(r.kind, r.symbol, r.quantity, r.price, r.fee, r.executed_at, r.row, NEW_SEQ + i)
                        for i, r in enumerate(fresh)
                    ),
                ]
            )
        except SageError as exc:
            cause = exc.__cause__
            if isinstance(cause, LedgerError) and isinstance(cause.ref, int):
                raise _rejected([(cause.ref, cause.reason)]) from exc
            raise
        rows_out = [
            {
                "id": uuid.uuid4(),
                "portfolio_id": portfolio_id,
                "kind": r.kind,
                "symbol": r.symbol,
                "quantity": r.quantity,
                "price": r.price,
                "fee": r.fee,
                "executed_at": r.executed_at,
                "note": r.note,
                "idempotency_key": r.key,
            }
            for r in fresh
        ]
        # multi-row INSERTs (not executemany): the ledger_version trigger fires per statement,
        # and 10 columns x INSERT_CHUNK stays under asyncpg's 32,767 parameters
        for first in range(0, len(rows_out), INSERT_CHUNK):
            await session.execute(insert(PortfolioTransaction).values(rows_out[first : first + INSERT_CHUNK]))
        await session.commit()
    return ImportResult(booked=len(fresh), skipped=len(rows) - len(fresh))


def _rejected(problems: list[tuple[int, str]]) -> ImportRejected:
    first_row, first_reason = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ImportRejected(
        f"Import rejected, nothing was written: row {first_row}: {first_reason}{more}",
        details=[{"row": row, "message": reason} for row, reason in problems],
    )


async def export_csv(db: Database, portfolio_id: uuid.UUID) -> str:
    async with db.session() as session:
        rows = (
            await session.execute(
                select(PortfolioTransaction)
                .where(PortfolioTransaction.portfolio_id == portfolio_id)
                .order_by(PortfolioTransaction.executed_at, PortfolioTransaction.seq)
            )
        ).scalars()
        return format_transactions(rows)
