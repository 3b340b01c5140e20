"""persisted performance points, dropped when the ledger or the candles they were valued from change

Revision ID: 0016_portfolio_points
Revises: 0015_portfolio_checkpoints
Create Date: 2026-12-06

`portfolio_points` keeps each valued step-boundary point of a performance series (value,
net deposits, the benchmark's close, the held symbols without a close) so that a process
that has not computed the series yet (a new worker, a restart) values only the points it has
never seen, not 367 points x 50 symbols (sage.portfolio.points). Derived, never truth; two
kinds of write make a point wrong, and both drop it in the writer's own transaction:

- A ledger write: the transaction triggers of 0015 now also delete the portfolio's points at
  or after the earliest `executed_at` the statement touched (a point includes the
  transactions executed at or before it).
- A candle write into a past step: a point at t is valued at the latest bar starting in
  [t - step, t), so a bar starting at s changes only points in (s, s + step]. Statement
  triggers on `market_candles` (insert, update, delete, truncate) delete the points in
  (min start, max start + step] of the rows the statement wrote, and bump the single row of
  `market_candle_epoch`, when any of those rows starts more than 5 minutes before the
  writing transaction began. The live ingestor's upserts of the current minute do not, and
  cost one min/max over the statement's rows. Points are stored only 10 minutes after their
  time, so no live bar can fall into a stored point's step (see sage.portfolio.points for
  the exact argument, and the one case it leaves: a transaction writing candles that stays
  open for minutes).

A reader stores points while holding the portfolio's row and the epoch row FOR SHARE and only
if the ledger_version and the epoch are still those it valued them under: a writer's trigger
takes those rows first, so it either waits for the reader (and then deletes what it stored)
or the reader sees the new version or epoch and stores nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_portfolio_points"
down_revision: str | None = "0015_portfolio_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEDGER_CHANGED = {
    "insert": "SELECT portfolio_id, executed_at FROM new_rows",
    "delete": "SELECT portfolio_id, executed_at FROM old_rows",
    "update": "SELECT portfolio_id, executed_at FROM new_rows UNION ALL SELECT portfolio_id, executed_at FROM old_rows",
}
_CANDLES_CHANGED = {
    "insert": "SELECT start FROM new_rows",
    "delete": "SELECT start FROM old_rows",
    "update": "SELECT start FROM new_rows UNION ALL SELECT start FROM old_rows",
}
# the steps a performance series uses (sage.portfolio.performance: 1 h up to 30 days, 1 d beyond)
_STEPS = (3600, 86400)
SETTLING = "5 minutes"  # a written bar starting before (transaction start - this) is a past one


def _ledger_function(event: str, *, points: bool) -> str:
    changed = _LEDGER_CHANGED[event]
    since = f"(SELECT portfolio_id, min(executed_at) AS since FROM ({changed}) w GROUP BY portfolio_id)"
    drop_points = (
        f"""DELETE FROM portfolio_points c USING {since} d
                WHERE c.portfolio_id = d.portfolio_id AND c.at >= d.since;"""
        if points
        else ""
    )
    return f"""CREATE OR REPLACE FUNCTION portfolio_ledger_bump_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE portfolios SET ledger_version = ledger_version + 1
                WHERE id IN (SELECT portfolio_id FROM ({changed}) w);
                DELETE FROM portfolio_checkpoints c USING {since} d
                WHERE c.portfolio_id = d.portfolio_id AND c.executed_at >= d.since;
                {drop_points}
                RETURN NULL;
            END $$"""


def _candles_function(event: str) -> str:
    drops = "\n".join(
        f"""DELETE FROM portfolio_points WHERE step_seconds = {step}
                    AND at > lo AND at <= hi + make_interval(secs => {step});"""
        for step in _STEPS
    )
    return f"""CREATE FUNCTION market_candles_settled_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                lo timestamptz;
                hi timestamptz;
            BEGIN
                SELECT min(start), max(start) INTO lo, hi FROM ({_CANDLES_CHANGED[event]}) w;
                IF lo IS NULL OR lo >= now() - interval '{SETTLING}' THEN
                    RETURN NULL;  -- the current minute's bars: no stored point can depend on them
                END IF;
                -- the epoch first: its row lock orders this write with a reader storing points
                UPDATE market_candle_epoch SET epoch = epoch + 1;
                {drops}
                RETURN NULL;
            END $$"""


_TRUNCATE_FUNCTION = """CREATE FUNCTION market_candles_settled_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE market_candle_epoch SET epoch = epoch + 1;
                DELETE FROM portfolio_points;
                RETURN NULL;
            END $$"""


def upgrade() -> None:
    op.create_table(
        "portfolio_points",
        sa.Column(
            "portfolio_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("portfolios.id", name="fk_portfolio_points_portfolio_id_portfolios", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step_seconds", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Numeric(), nullable=True),
        sa.Column("net_deposits", sa.Numeric(), nullable=False),
        sa.Column("benchmark", sa.Numeric(), nullable=True),
        sa.Column("missing", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("portfolio_id", "step_seconds", "at", name="pk_portfolio_points"),
    )
    # the candle triggers drop points by time across portfolios
    op.create_index("ix_portfolio_points_step_at", "portfolio_points", ["step_seconds", "at"])
    op.create_table(
        "market_candle_epoch",
        sa.Column("id", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_market_candle_epoch"),
        sa.CheckConstraint("id", name="ck_market_candle_epoch_one_row"),
    )
    op.execute("INSERT INTO market_candle_epoch (id, epoch) VALUES (true, 0)")
    for event in _LEDGER_CHANGED:
        op.execute(_ledger_function(event, points=True))
    for event, transition in (("insert", "NEW TABLE AS new_rows"), ("delete", "OLD TABLE AS old_rows")):
        op.execute(_candles_function(event))
        op.execute(
            f"CREATE TRIGGER market_candles_settled_{event} AFTER {event.upper()} ON market_candles"
            f" REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION market_candles_settled_{event}()"
        )
    op.execute(_candles_function("update"))
    op.execute(
        "CREATE TRIGGER market_candles_settled_update AFTER UPDATE ON market_candles"
        " REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION market_candles_settled_update()"
    )
    op.execute(_TRUNCATE_FUNCTION)
    op.execute(
        "CREATE TRIGGER market_candles_settled_truncate AFTER TRUNCATE ON market_candles"
        " FOR EACH STATEMENT EXECUTE FUNCTION market_candles_settled_truncate()"
    )


def downgrade() -> None:
    for event in ("insert", "delete", "update", "truncate"):
        op.execute(f"DROP TRIGGER market_candles_settled_{event} ON market_candles")
        op.execute(f"DROP FUNCTION market_candles_settled_{event}()")
    for event in _LEDGER_CHANGED:
        op.execute(_ledger_function(event, points=False))  # 0015's, as it was
    op.drop_table("market_candle_epoch")
    op.drop_table("portfolio_points")
