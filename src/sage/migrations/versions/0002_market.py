"""market history: one-minute candles and the Fear & Greed index

Revision ID: 0002_market
Revises: 0001_users
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_market"
down_revision: str | None = "0001_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_candles",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(41), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Numeric(), nullable=False),
        sa.Column("high", sa.Numeric(), nullable=False),
        sa.Column("low", sa.Numeric(), nullable=False),
        sa.Column("close", sa.Numeric(), nullable=False),
        sa.Column("volume", sa.Numeric(), nullable=False),
        sa.Column("ticks", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", "start", name="pk_market_candles"),
    )
    # Retention deletes by age across all symbols.
    op.create_index("ix_market_candles_start", "market_candles", ["start"])
    op.create_table(
        "market_fear_greed",
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("classification", sa.String(32), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("as_of", name="pk_market_fear_greed"),
        sa.CheckConstraint("value BETWEEN 0 AND 100", name="ck_market_fear_greed_value_range"),
    )


def downgrade() -> None:
    op.drop_table("market_fear_greed")
    op.drop_index("ix_market_candles_start", table_name="market_candles")
    op.drop_table("market_candles")
