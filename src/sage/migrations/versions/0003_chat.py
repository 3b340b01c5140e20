"""chats, chat messages, daily token usage, portfolio positions

Revision ID: 0003_chat
Revises: 0002_market
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_chat"
down_revision: str | None = "0002_market"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chats",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chats"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_chats_user_id_users", ondelete="CASCADE"),
    )
    op.create_index("ix_chats_user_id_updated_at", "chats", ["user_id", "updated_at"])

    op.create_table(
        "chat_messages",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("chat_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reply_to_id", postgresql.UUID(as_uuid=True)),
        sa.Column("metadata", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_messages"),
        sa.UniqueConstraint("seq", name="uq_chat_messages_seq"),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], name="fk_chat_messages_chat_id_chats", ondelete="CASCADE"),
        sa.CheckConstraint("role IN ('user', 'assistant')", name="ck_chat_messages_role"),
        sa.CheckConstraint("status IN ('complete', 'incomplete', 'error')", name="ck_chat_messages_status"),
    )
    op.create_index("ix_chat_messages_chat_id_seq", "chat_messages", ["chat_id", "seq"])

    op.create_table(
        "chat_token_usage",
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name="pk_chat_token_usage"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_chat_token_usage_user_id_users", ondelete="CASCADE"
        ),
    )

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


def downgrade() -> None:
    op.drop_table("portfolio_positions")
    op.drop_table("chat_token_usage")
    op.drop_index("ix_chat_messages_chat_id_seq", table_name="chat_messages")
    op.drop_table("chat_messages")
    op.drop_index("ix_chats_user_id_updated_at", table_name="chats")
    op.drop_table("chats")
