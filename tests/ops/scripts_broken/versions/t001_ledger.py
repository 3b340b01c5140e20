"""ledger: the table the failing migrations work on

Revision ID: t001_ledger
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "t001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("memo", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(18, 8), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger")
