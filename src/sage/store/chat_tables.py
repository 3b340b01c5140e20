"""Chats, their messages and per-user daily token usage.

Messages carry a `seq` from one sequence so pagination has a stable total order even
when two messages share a timestamp. An assistant message is inserted once, when its
answer ends (complete, incomplete or error), with the id announced at the stream's start.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from sage.store.base import Base


class Chat(Base):
    __tablename__ = "chats"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (Index("ix_chats_user_id_updated_at", "user_id", "updated_at"),)


class ChatMessage(Base):
    __tablename__ = "chat_messages"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    chat_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("chats.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # user | assistant
    content: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # complete | incomplete | stopped | error
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # provider, model, offline, cached, usage, latency_ms, grounding, unverified_claims, context
    meta: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, default=dict, server_default=text("'{}'::jsonb")
    )
    # grounding v2: the figures of an answer it could not verify, with character spans and reasons
    unverified: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, default=list, server_default=text("'[]'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    # set when a regenerated answer or an edited question replaced this message; the
    # conversation (list, history) shows only messages where it is NULL, versions show all
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_chat_messages_chat_id_seq", "chat_id", "seq"),
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
        CheckConstraint("status IN ('complete', 'incomplete', 'stopped', 'error')", name="status"),
    )


# full-text search over titles and messages (revision 0009_chat_tools); queries use the same expression
SEARCH_CONFIG = "simple"
Index(
    "ix_chat_messages_search",
    func.to_tsvector(text(f"'{SEARCH_CONFIG}'::regconfig"), ChatMessage.content),
    postgresql_using="gin",
)
Index(
    "ix_chats_title_search", func.to_tsvector(text(f"'{SEARCH_CONFIG}'::regconfig"), Chat.title), postgresql_using="gin"
)


class ChatTokenUsage(Base):
    """Tokens spent per user per UTC day: the daily budget reads this row."""

    __tablename__ = "chat_token_usage"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
