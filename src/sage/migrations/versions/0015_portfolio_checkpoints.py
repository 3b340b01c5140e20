"""persisted ledger checkpoints, dropped from the earliest time a write touches

Revision ID: 0015_portfolio_checkpoints
Revises: 0014_alert_crossing_index
Create Date: 2026-12-06

`portfolio_checkpoints` keeps a ledger's derived state (cash, totals, holdings) after every
1,000th transaction and after the last one read (sage.portfolio.checkpoints), with the
ledger_version it was derived from, so a process
that has not read the portfolio yet replays only the transactions after the latest
checkpoint instead of the whole history. The ledger-version triggers of 0011 now also
delete every checkpoint of the written portfolio at or after the earliest `executed_at` the
statement inserted, deleted or updated (old and new times), after bumping the version (the
bump takes the portfolio's row lock first: a reader storing a checkpoint holds FOR SHARE
on that row and checks the version, so it can never store one the writer has invalidated).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_portfolio_checkpoints"
down_revision: str | None = "0014_alert_crossing_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANGED = {
    "insert": "SELECT portfolio_id, executed_at FROM new_rows",
    "delete": "SELECT portfolio_id, executed_at FROM old_rows",
    "update": "SELECT portfolio_id, executed_at FROM new_rows UNION ALL SELECT portfolio_id, executed_at FROM old_rows",
}


def _function(event: str, *, checkpoints: bool) -> str:
    changed = _CHANGED[event]
    drop = (
        f"""DELETE FROM portfolio_checkpoints c
                USING (SELECT portfolio_id, min(executed_at) AS since FROM ({changed}) w GROUP BY portfolio_id) d
                WHERE c.portfolio_id = d.portfolio_id AND c.executed_at >= d.since;"""
        if checkpoints
        else ""
    )
    return f"""CREATE OR REPLACE FUNCTION portfolio_ledger_bump_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE portfolios SET ledger_version = ledger_version + 1
                WHERE id IN (SELECT portfolio_id FROM ({changed}) w);
                {drop}
                RETURN NULL;
            END $$"""


def upgrade() -> None:
    op.create_table(
        "portfolio_checkpoints",
        sa.Column(
            "portfolio_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("portfolios.id", name="fk_portfolio_checkpoints_portfolio_id_portfolios", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ledger_version", sa.BigInteger(), nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("state", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("portfolio_id", "executed_at", "seq", name="pk_portfolio_checkpoints"),
    )
    for event in _CHANGED:
        op.execute(_function(event, checkpoints=True))


def downgrade() -> None:
    for event in _CHANGED:
        op.execute(_function(event, checkpoints=False))  # 0011's bump, as it was
    op.drop_table("portfolio_checkpoints")
