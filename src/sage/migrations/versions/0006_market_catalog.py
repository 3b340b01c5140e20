"""market symbol catalog; candles keyed by interval too (REST backfill of 1h and 1d bars)

Revision ID: 0006_market_catalog
Revises: 0004_alerts
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_market_catalog"
down_revision: str | None = "0004_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_symbols",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(41), nullable=False),
        sa.Column("exchange_symbol", sa.String(64), nullable=False),
        sa.Column("base", sa.String(20), nullable=False),
        sa.Column("quote", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100)),
        sa.Column("tick_size", sa.Numeric()),
        sa.Column("lot_size", sa.Numeric()),
        sa.Column("price_precision", sa.SmallInteger()),
        sa.Column("amount_precision", sa.SmallInteger()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", name="pk_market_symbols"),
    )
    op.create_index("ix_market_symbols_symbol", "market_symbols", ["symbol"])
    # Every existing bar is a live one-minute bar.
    op.add_column("market_candles", sa.Column("interval", sa.String(4), server_default="1m", nullable=False))
    op.drop_constraint("pk_market_candles", "market_candles", type_="primary")
    op.create_primary_key("pk_market_candles", "market_candles", ["exchange", "symbol", "interval", "start"])


def downgrade() -> None:
    op.execute("DELETE FROM market_candles WHERE interval <> '1m'")
    op.drop_constraint("pk_market_candles", "market_candles", type_="primary")
    op.create_primary_key("pk_market_candles", "market_candles", ["exchange", "symbol", "start"])
    op.drop_column("market_candles", "interval")
    op.drop_index("ix_market_symbols_symbol", table_name="market_symbols")
    op.drop_table("market_symbols")
