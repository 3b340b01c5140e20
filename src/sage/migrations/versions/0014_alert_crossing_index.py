"""an index of active alerts by (symbol, kind, armed, threshold): a pass reads only the alerts a price crosses

Revision ID: 0014_alert_crossing_index
Revises: 0013_portfolio_alerts
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_alert_crossing_index"
down_revision: str | None = "0013_portfolio_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A price alert changes state only when the price is on the far side of its threshold for
    # its `armed` flag (armed and crossed: fires; unarmed and on the quiet side: arms). With the
    # threshold last, each of those four cases is one range scan per symbol, so a pass reads
    # the alerts the new price crosses, not every alert on the symbol.
    op.create_index(
        "ix_market_alerts_crossing",
        "market_alerts",
        ["symbol", "kind", "armed", "threshold"],
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index("ix_market_alerts_crossing", table_name="market_alerts")
