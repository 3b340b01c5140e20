"""a migration that holds its transaction open until the test opens the gate

The test holds advisory lock GATE; this revision waits for it, so a first migration is
provably in progress while a second one starts.

Revision ID: g001_gated
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "g001_gated"
down_revision = None
branch_labels = None
depends_on = None

GATE = 7_000_001


def upgrade() -> None:
    op.create_table("gated", sa.Column("id", sa.Integer, primary_key=True))
    op.execute(f"SELECT pg_advisory_xact_lock({GATE})")
    op.execute("INSERT INTO gated (id) VALUES (1)")


def downgrade() -> None:
    op.drop_table("gated")
