"""market price alerts

Revision ID: 0004_alerts
Revises: 0003_chat
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_alerts"
down_revision: str | None = "0003_chat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_alerts",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("condition", sa.String(8), nullable=False),
        sa.Column("threshold", sa.Numeric(38, 18), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True)),
        sa.Column("triggered_price", sa.Numeric(38, 18)),
        sa.PrimaryKeyConstraint("id", name="pk_market_alerts"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_market_alerts_user_id_users", ondelete="CASCADE"),
        sa.CheckConstraint("condition IN ('above', 'below')", name="ck_market_alerts_condition"),
    )
    op.create_index("ix_market_alerts_user_id", "market_alerts", ["user_id"])
    # the evaluator scans only alerts still waiting to fire
    op.create_index(
        "ix_market_alerts_pending", "market_alerts", ["symbol"], postgresql_where=sa.text("triggered_at IS NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_market_alerts_pending", table_name="market_alerts")
    op.drop_index("ix_market_alerts_user_id", table_name="market_alerts")
    op.drop_table("market_alerts")
