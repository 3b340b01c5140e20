"""shadow portfolio as a paper-trading ledger: portfolios and transactions

Each user's positions become a default portfolio "Default" holding one opening buy per
position at its average cost (no fee), executed when the position was last set. So that
cash never goes negative, the portfolio first receives a deposit equal to the positions'
total cost (each cost rounded up to 18 decimal places), booked when the user's first
position was created; its cash after the migration is therefore 0 (plus at most 1e-18 per
position), and its `starting_cash` records that deposit. The positions table is then
dropped: positions are derived from the ledger from now on.

Downgrade rebuilds the positions table from each default portfolio's derived holdings
(weighted average cost); other portfolios, cash and realized P&L have no place there.

Revision ID: 0007_portfolio_ledger
Revises: 0004_alerts
Create Date: 2026-12-05
"""

import decimal
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_portfolio_ledger"
down_revision: str | None = "0004_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portfolios",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("base_currency", sa.String(20), server_default="USDT", nullable=False),
        sa.Column("starting_cash", sa.Numeric(38, 18), server_default="0", nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_portfolios"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_portfolios_user_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("user_id", "name", name="uq_portfolios_user_id_name"),
        sa.CheckConstraint("starting_cash >= 0", name="ck_portfolios_starting_cash_non_negative"),
    )
    op.create_index("ix_portfolios_user_id", "portfolios", ["user_id"])
    op.create_index(
        "uq_portfolios_default", "portfolios", ["user_id"], unique=True, postgresql_where=sa.text("is_default")
    )
    op.create_table(
        "portfolio_transactions",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("portfolio_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("symbol", sa.String(41)),
        sa.Column("quantity", sa.Numeric(38, 18), nullable=False),
        sa.Column("price", sa.Numeric(38, 18)),
        sa.Column("fee", sa.Numeric(38, 18), server_default="0", nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(500)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_portfolio_transactions"),
        sa.UniqueConstraint("seq", name="uq_portfolio_transactions_seq"),
        sa.UniqueConstraint("portfolio_id", "idempotency_key", name="uq_portfolio_transactions_idempotency"),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name="fk_portfolio_transactions_portfolio_id_portfolios",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("kind IN ('buy', 'sell', 'deposit', 'withdraw')", name="ck_portfolio_transactions_kind"),
        sa.CheckConstraint("quantity > 0", name="ck_portfolio_transactions_quantity_positive"),
        sa.CheckConstraint("fee >= 0", name="ck_portfolio_transactions_fee_non_negative"),
        sa.CheckConstraint(
            "(kind IN ('buy', 'sell') AND symbol IS NOT NULL AND price >= 0)"
            " OR (kind IN ('deposit', 'withdraw') AND symbol IS NULL AND price IS NULL)",
            name="ck_portfolio_transactions_shape",
        ),
    )
    op.create_index(
        "ix_portfolio_transactions_portfolio_executed",
        "portfolio_transactions",
        ["portfolio_id", "executed_at", "seq"],
    )

    # positions -> one default portfolio per user: a covering deposit, then one buy per position
    op.execute(
        """
        INSERT INTO portfolios (id, user_id, name, base_currency, starting_cash, is_default, created_at, updated_at)
        SELECT gen_random_uuid(), user_id, 'Default', 'USDT',
               sum(ceil(quantity * average_cost * 1e18) * 1e-18), true, min(created_at), now()
          FROM portfolio_positions
      GROUP BY user_id
        """
    )
    op.execute(
        """
        INSERT INTO portfolio_transactions (id, portfolio_id, kind, quantity, fee, executed_at, note)
        SELECT gen_random_uuid(), p.id, 'deposit', p.starting_cash, 0, p.created_at,
               'Opening deposit covering the positions migrated into the ledger'
          FROM portfolios p
         WHERE p.starting_cash > 0
        """
    )
    op.execute(
        """
        INSERT INTO portfolio_transactions (id, portfolio_id, kind, symbol, quantity, price, fee, executed_at, note)
        SELECT gen_random_uuid(), p.id, 'buy', pp.symbol, pp.quantity, pp.average_cost, 0, pp.updated_at,
               'Opening trade migrated from the position'
          FROM portfolio_positions pp
          JOIN portfolios p ON p.user_id = pp.user_id AND p.is_default
      ORDER BY pp.user_id, pp.symbol
        """
    )
    op.drop_table("portfolio_positions")


def downgrade() -> None:
    op.create_table(
        "portfolio_positions",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Numeric(38, 18), nullable=False),
        sa.Column("average_cost", sa.Numeric(38, 18), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_portfolio_positions"),
        sa.UniqueConstraint("user_id", "symbol", name="uq_portfolio_positions_user_id_symbol"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_portfolio_positions_user_id_users", ondelete="CASCADE"
        ),
        sa.CheckConstraint("quantity > 0", name="ck_portfolio_positions_quantity_positive"),
        sa.CheckConstraint("average_cost >= 0", name="ck_portfolio_positions_average_cost_non_negative"),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            """
            SELECT p.user_id, t.kind, t.symbol, t.quantity, t.price, t.executed_at
              FROM portfolio_transactions t JOIN portfolios p ON p.id = t.portfolio_id
             WHERE p.is_default AND t.kind IN ('buy', 'sell')
          ORDER BY p.user_id, t.executed_at, t.seq
            """
        )
    )
    # weighted average cost, as sage.portfolio.ledger derives it (kept inline: a migration
    # must not change when application code does)
    context = decimal.Context(prec=80)  # products and sums of NUMERIC(38, 18) values, exactly
    with decimal.localcontext(context):
        held: dict[tuple[object, str], list[Decimal]] = {}
        for user_id, kind, symbol, quantity, price, _ in rows:
            quantity_held, cost = held.get((user_id, symbol), [Decimal(0), Decimal(0)])
            if kind == "buy":
                quantity_held, cost = quantity_held + quantity, cost + quantity * price
            else:
                sold = min(quantity, quantity_held)
                cost = cost - cost * sold / quantity_held if quantity_held else Decimal(0)
                quantity_held -= sold
            held[(user_id, symbol)] = [quantity_held, cost]
        positions = [
            {
                "user_id": user_id,
                "symbol": symbol,
                "quantity": quantity,
                "average_cost": context.divide(cost, quantity).quantize(Decimal("1e-18"), context=context),
            }
            for (user_id, symbol), (quantity, cost) in held.items()
            if quantity > 0
        ]
    if positions:
        bind.execute(
            sa.text(
                "INSERT INTO portfolio_positions (id, user_id, symbol, quantity, average_cost)"
                " VALUES (gen_random_uuid(), :user_id, :symbol, :quantity, :average_cost)"
            ),
            positions,
        )
    op.drop_index("ix_portfolio_transactions_portfolio_executed", table_name="portfolio_transactions")
    op.drop_table("portfolio_transactions")
    op.drop_index("uq_portfolios_default", table_name="portfolios")
    op.drop_index("ix_portfolios_user_id", table_name="portfolios")
    op.drop_table("portfolios")
