"""deliberately broken: changes schema and data, then fails half-way

The unique constraint cannot be built because the ledger holds duplicate memos, the
classic migration that passes on an empty development database and fails in production.

Revision ID: t003_broken
Revises: t002_ledger_note
"""

import sqlalchemy as sa
from alembic import op

revision = "t003_broken"
down_revision = "t002_ledger_note"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ledger", sa.Column("category", sa.Text))
    op.execute("UPDATE ledger SET category = 'general', amount = amount * 100")
    op.create_index("ix_ledger_category", "ledger", ["category"])
    op.execute("DELETE FROM ledger WHERE id % 2 = 0")
    op.create_table("ledger_archive", sa.Column("id", sa.BigInteger, primary_key=True))
    op.execute("INSERT INTO ledger (memo, amount) VALUES ('dup', 1), ('dup', 2)")
    op.create_unique_constraint("uq_ledger_memo", "ledger", ["memo"])  # fails: duplicate memos


def downgrade() -> None:
    op.drop_constraint("uq_ledger_memo", "ledger")
    op.drop_table("ledger_archive")
    op.drop_index("ix_ledger_category", "ledger")
    op.drop_column("ledger", "category")
