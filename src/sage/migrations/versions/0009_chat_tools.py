"""chat controls: stopped answers, versions of a turn, full-text search

Revision ID: 0009_chat_tools
Revises: 0008_alerts_delivery
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_chat_tools"
down_revision: str | None = "0008_alerts_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # an answer the user stopped is saved as `stopped`
    op.drop_constraint("ck_chat_messages_status", "chat_messages", type_="check")
    op.create_check_constraint(
        "ck_chat_messages_status", "chat_messages", "status IN ('complete', 'incomplete', 'stopped', 'error')"
    )
    # regenerate / edit keep earlier versions of a turn; only current messages have NULL here
    op.add_column("chat_messages", sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
    # full-text search over the user's chats ('simple': no stemming, works for any language)
    op.execute("CREATE INDEX ix_chat_messages_search ON chat_messages USING gin (to_tsvector('simple', content))")
    op.execute("CREATE INDEX ix_chats_title_search ON chats USING gin (to_tsvector('simple', title))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_chats_title_search")
    op.execute("DROP INDEX IF EXISTS ix_chat_messages_search")
    op.drop_column("chat_messages", "superseded_at")
    op.execute("UPDATE chat_messages SET status = 'incomplete' WHERE status = 'stopped'")
    op.drop_constraint("ck_chat_messages_status", "chat_messages", type_="check")
    op.create_check_constraint(
        "ck_chat_messages_status", "chat_messages", "status IN ('complete', 'incomplete', 'error')"
    )
