"""a harmless column: commits on its own before t003 fails

Revision ID: t002_ledger_note
Revises: t001_ledger
"""

import sqlalchemy as sa
from alembic import op

revision = "t002_ledger_note"
down_revision = "t001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ledger", sa.Column("note", sa.Text, server_default="n/a"))
    op.execute("UPDATE ledger SET memo = memo || ' (migrated)'")


def downgrade() -> None:
    op.drop_column("ledger", "note")
