"""portfolio ledger version (bumped by triggers) and a candle index for the performance closes

Revision ID: 0011_portfolio_rollups
Revises: 0010_grounding_spans
Create Date: 2026-12-06

`portfolios.ledger_version` is the key of the derived state (positions, cash, the timeline a
performance series values) that `sage.portfolio.state` caches: statement-level triggers bump
it in the writer's own transaction whenever the portfolio's transactions are inserted,
updated or deleted, whatever wrote them (one UPDATE per statement, not per row: a CSV import
of 10,000 rows bumps it once).

`ix_market_candles_exchange_symbol_start` serves "the last close of a symbol before t"
(sage.portfolio.performance) as one index-only descent: the primary key has `interval`
between `symbol` and `start`, so that question otherwise walks the `start` index across all
symbols of that minute.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_portfolio_rollups"
down_revision: str | None = "0010_grounding_spans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# one function per event: each reads only the transition table its trigger declares
_BUMPS = {
    "insert": "SELECT portfolio_id FROM new_rows",
    "delete": "SELECT portfolio_id FROM old_rows",
    "update": "SELECT portfolio_id FROM new_rows UNION SELECT portfolio_id FROM old_rows",
}
_REFERENCING = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def upgrade() -> None:
    # a constant default: PostgreSQL 11+ adds the column without rewriting the table
    op.add_column("portfolios", sa.Column("ledger_version", sa.BigInteger(), server_default="0", nullable=False))
    for event, changed in _BUMPS.items():
        op.execute(
            f"""CREATE FUNCTION portfolio_ledger_bump_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE portfolios SET ledger_version = ledger_version + 1 WHERE id IN ({changed});
                RETURN NULL;
            END $$"""
        )
        op.execute(
            f"""CREATE TRIGGER portfolio_ledger_bump_{event} AFTER {event.upper()} ON portfolio_transactions
            {_REFERENCING[event]} FOR EACH STATEMENT EXECUTE FUNCTION portfolio_ledger_bump_{event}()"""
        )
    op.create_index(
        "ix_market_candles_exchange_symbol_start",
        "market_candles",
        ["exchange", "symbol", "start"],
        postgresql_include=["interval", "close"],
    )


def downgrade() -> None:
    op.drop_index("ix_market_candles_exchange_symbol_start", table_name="market_candles")
    for event in _BUMPS:
        op.execute(f"DROP TRIGGER portfolio_ledger_bump_{event} ON portfolio_transactions")
        op.execute(f"DROP FUNCTION portfolio_ledger_bump_{event}()")
    op.drop_column("portfolios", "ledger_version")
