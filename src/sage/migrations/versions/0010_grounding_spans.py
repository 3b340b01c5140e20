"""the unverified figures of an assistant message (grounding v2 spans)

Revision ID: 0010_grounding_spans
Revises: 0009_chat_tools
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_grounding_spans"
down_revision: str | None = "0009_chat_tools"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a constant default: PostgreSQL 11+ adds the column without rewriting the table
    op.add_column(
        "chat_messages",
        sa.Column("unverified", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("chat_messages", "unverified")
