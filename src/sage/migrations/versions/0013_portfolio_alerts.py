"""portfolio alerts: a portfolio's value above / below a level, or a drawdown from its peak

Revision ID: 0013_portfolio_alerts
Revises: 0012_revoked_family_index
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_portfolio_alerts"
down_revision: str | None = "0012_revoked_family_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARKET_KINDS = "'price_above', 'price_below', 'change_pct', 'fear_greed_above', 'fear_greed_below'"
PORTFOLIO_KINDS = "'portfolio_value_above', 'portfolio_value_below', 'portfolio_return_below'"


def upgrade() -> None:
    op.add_column(
        "market_alerts",
        sa.Column(
            "portfolio_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("portfolios.id", name="fk_market_alerts_portfolio_id_portfolios", ondelete="CASCADE"),
        ),
    )
    op.add_column("market_alerts", sa.Column("peak_value", sa.Numeric(38, 18)))
    op.drop_constraint("ck_market_alerts_kind", "market_alerts", type_="check")
    op.create_check_constraint("ck_market_alerts_kind", "market_alerts", f"kind IN ({MARKET_KINDS}, {PORTFOLIO_KINDS})")
    # a portfolio alert names its portfolio, and only a portfolio alert does
    op.create_check_constraint(
        "ck_market_alerts_portfolio",
        "market_alerts",
        f"(kind IN ({PORTFOLIO_KINDS})) = (portfolio_id IS NOT NULL)",
    )
    op.create_index(
        "ix_market_alerts_portfolio",
        "market_alerts",
        ["portfolio_id"],
        postgresql_where=sa.text("portfolio_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_market_alerts_portfolio", table_name="market_alerts")
    op.drop_constraint("ck_market_alerts_portfolio", "market_alerts", type_="check")
    op.drop_constraint("ck_market_alerts_kind", "market_alerts", type_="check")
    # The older schema cannot express portfolio alerts.
    op.execute(f"DELETE FROM market_alerts WHERE kind IN ({PORTFOLIO_KINDS})")
    op.create_check_constraint("ck_market_alerts_kind", "market_alerts", f"kind IN ({MARKET_KINDS})")
    op.drop_column("market_alerts", "peak_value")
    op.drop_column("market_alerts", "portfolio_id")
