"""Chat persistence: keyword-only functions over one session each (the caller commits)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sage.chat.providers.base import ChatTurn, Usage
from sage.store.chat_tables import SEARCH_CONFIG, Chat, ChatMessage, ChatTokenUsage

DEFAULT_TITLE = "New chat"
TITLE_MAX = 200


def title_from(question: str, limit: int = 60) -> str:
    """A chat title from its first question: one line, cut at a word boundary."""
    line = " ".join(question.split())
    if len(line) <= limit:
        return line or DEFAULT_TITLE
    cut = line[:limit].rsplit(" ", 1)[0]
    return (cut or line[:limit]) + "…"


async def create_chat(session: AsyncSession, *, user_id: uuid.UUID, title: str | None) -> Chat:
    now = datetime.now(UTC)
    chat = Chat(id=uuid.uuid4(), user_id=user_id, title=title or DEFAULT_TITLE, created_at=now, updated_at=now)
    session.add(chat)
    await session.flush()
    return chat


async def get_chat(session: AsyncSession, *, user_id: uuid.UUID, chat_id: uuid.UUID) -> Chat | None:
    result = await session.execute(select(Chat).where(Chat.id == chat_id, Chat.user_id == user_id))
    return result.scalar_one_or_none()


async def list_chats(session: AsyncSession, *, user_id: uuid.UUID, limit: int, offset: int) -> tuple[list[Chat], int]:
    total = await session.scalar(select(func.count()).select_from(Chat).where(Chat.user_id == user_id))
    result = await session.execute(
        select(Chat)
        .where(Chat.user_id == user_id)
        .order_by(Chat.updated_at.desc(), Chat.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(result.scalars()), int(total or 0)


async def rename_chat(session: AsyncSession, *, user_id: uuid.UUID, chat_id: uuid.UUID, title: str) -> Chat | None:
    chat = await get_chat(session, user_id=user_id, chat_id=chat_id)
    if chat is None:
        return None
    chat.title = title
    chat.updated_at = datetime.now(UTC)
    await session.flush()
    return chat


async def delete_chat(session: AsyncSession, *, user_id: uuid.UUID, chat_id: uuid.UUID) -> bool:
    result = await session.execute(delete(Chat).where(Chat.id == chat_id, Chat.user_id == user_id).returning(Chat.id))
    return result.first() is not None


async def touch_chat(session: AsyncSession, *, chat_id: uuid.UUID, title: str | None = None) -> None:
    values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if title is not None:
        values["title"] = title
    await session.execute(update(Chat).where(Chat.id == chat_id).values(**values))


async def add_message(
    session: AsyncSession,
    *,
    message_id: uuid.UUID,
    chat_id: uuid.UUID,
    role: str,
    content: str,
    status: str,
    meta: dict[str, Any],
    reply_to_id: uuid.UUID | None = None,
    unverified: list[dict[str, Any]] | None = None,
) -> ChatMessage:
    message = ChatMessage(
        id=message_id,
        chat_id=chat_id,
        role=role,
        content=content,
        status=status,
        meta=meta,
        unverified=unverified or [],
        reply_to_id=reply_to_id,
        created_at=datetime.now(UTC),
    )
    session.add(message)
    await session.flush()
    return message


async def get_message(session: AsyncSession, *, chat_id: uuid.UUID, message_id: uuid.UUID) -> ChatMessage | None:
    result = await session.execute(
        select(ChatMessage).where(ChatMessage.id == message_id, ChatMessage.chat_id == chat_id)
    )
    return result.scalar_one_or_none()


async def count_messages(session: AsyncSession, *, chat_id: uuid.UUID) -> int:
    total = await session.scalar(select(func.count()).select_from(ChatMessage).where(ChatMessage.chat_id == chat_id))
    return int(total or 0)


async def page_messages(
    session: AsyncSession, *, chat_id: uuid.UUID, limit: int, before_seq: int | None
) -> tuple[list[ChatMessage], bool]:
    """The newest `limit` messages older than `before_seq`, oldest first; and whether more exist."""
    query = select(ChatMessage).where(ChatMessage.chat_id == chat_id, ChatMessage.superseded_at.is_(None))
    if before_seq is not None:
        query = query.where(ChatMessage.seq < before_seq)
    result = await session.execute(query.order_by(ChatMessage.seq.desc()).limit(limit + 1))
    rows = list(result.scalars())
    more = len(rows) > limit
    return list(reversed(rows[:limit])), more


async def history(
    session: AsyncSession, *, chat_id: uuid.UUID, limit: int, before_seq: int | None = None
) -> list[ChatTurn]:
    """The conversation so far (before `before_seq`) as model turns: alternating, starting with the user.

    Failed answers are left out (their question stays, merged with the next one), so
    the model never sees an error as something it said; superseded versions are left out.
    """
    if limit <= 0:
        return []
    query = select(ChatMessage.role, ChatMessage.content, ChatMessage.status).where(
        ChatMessage.chat_id == chat_id, ChatMessage.superseded_at.is_(None)
    )
    if before_seq is not None:
        query = query.where(ChatMessage.seq < before_seq)
    result = await session.execute(query.order_by(ChatMessage.seq.desc()).limit(limit))
    turns: list[ChatTurn] = []
    for role, content, status in reversed(result.all()):
        if role == "assistant" and (status == "error" or not content.strip()):
            continue
        if turns and turns[-1].role == role:
            turns[-1] = ChatTurn(role=turns[-1].role, content=turns[-1].content + "\n\n" + content)
        else:
            turns.append(ChatTurn(role="user" if role == "user" else "assistant", content=content))
    while turns and turns[0].role != "user":
        turns.pop(0)
    return turns


async def add_token_usage(session: AsyncSession, *, user_id: uuid.UUID, day: date, usage: Usage) -> None:
    values = {
        "input_tokens": usage.input_tokens + usage.cache_creation_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "requests": 1,
    }
    statement = insert(ChatTokenUsage).values(user_id=user_id, day=day, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[ChatTokenUsage.user_id, ChatTokenUsage.day],
        set_={name: getattr(ChatTokenUsage, name) + statement.excluded[name] for name in values},
    )
    await session.execute(statement)


async def tokens_used(session: AsyncSession, *, user_id: uuid.UUID, day: date) -> int:
    row = (
        await session.execute(
            select(ChatTokenUsage.input_tokens + ChatTokenUsage.output_tokens + ChatTokenUsage.cache_read_tokens).where(
                ChatTokenUsage.user_id == user_id, ChatTokenUsage.day == day
            )
        )
    ).scalar_one_or_none()
    return int(row or 0)


async def usage_of_day(session: AsyncSession, *, user_id: uuid.UUID, day: date) -> ChatTokenUsage | None:
    return await session.get(ChatTokenUsage, (user_id, day))


async def last_messages(session: AsyncSession, *, chat_id: uuid.UUID, count: int) -> list[ChatMessage]:
    """The newest `count` current messages, newest first."""
    result = await session.execute(
        select(ChatMessage)
        .where(ChatMessage.chat_id == chat_id, ChatMessage.superseded_at.is_(None))
        .order_by(ChatMessage.seq.desc())
        .limit(count)
    )
    return list(result.scalars())


async def supersede(session: AsyncSession, *, message_ids: list[uuid.UUID]) -> None:
    if message_ids:
        await session.execute(
            update(ChatMessage).where(ChatMessage.id.in_(message_ids)).values(superseded_at=datetime.now(UTC))
        )


async def turn_versions(session: AsyncSession, *, chat_id: uuid.UUID, question: ChatMessage) -> list[ChatMessage]:
    """Every version of the turn `question` belongs to: its edited questions and all their answers."""
    root = str(question.meta.get("turn") or question.id)
    questions = select(ChatMessage.id).where(
        ChatMessage.chat_id == chat_id,
        ChatMessage.role == "user",
        (ChatMessage.id == uuid.UUID(root)) | (ChatMessage.meta["turn"].astext == root),
    )
    result = await session.execute(
        select(ChatMessage)
        .where(
            ChatMessage.chat_id == chat_id,
            ChatMessage.id.in_(questions) | ChatMessage.reply_to_id.in_(questions),
        )
        .order_by(ChatMessage.seq)
    )
    return list(result.scalars())


async def search(session: AsyncSession, *, user_id: uuid.UUID, query: str, limit: int) -> list[dict[str, Any]]:
    """The user's chats whose title or current messages match `query` (web-search syntax), best first."""
    result = await session.execute(search_statement(user_id=user_id, query=query, limit=limit))
    return [dict(row._mapping) for row in result]


def search_statement(*, user_id: uuid.UUID, query: str, limit: int) -> Any:
    """Uses the GIN indexes of revision 0009_chat_tools: the same to_tsvector expressions."""
    config: Any = literal_column(f"'{SEARCH_CONFIG}'::regconfig")
    tsquery = func.websearch_to_tsquery(config, query)
    message_vector = func.to_tsvector(config, ChatMessage.content)
    title_vector = func.to_tsvector(config, Chat.title)
    messages = (
        select(
            Chat.id.label("chat_id"),
            Chat.title,
            ChatMessage.id.label("message_id"),
            ChatMessage.role,
            func.ts_headline(config, ChatMessage.content, tsquery, "MaxWords=18, MinWords=6").label("snippet"),
            func.ts_rank(message_vector, tsquery).label("rank"),
            ChatMessage.created_at.label("at"),
        )
        .join(Chat, Chat.id == ChatMessage.chat_id)
        .where(Chat.user_id == user_id, ChatMessage.superseded_at.is_(None), message_vector.op("@@")(tsquery))
    )
    titles = select(
        Chat.id.label("chat_id"),
        Chat.title,
        literal_column("NULL::uuid").label("message_id"),
        literal_column("NULL::varchar").label("role"),
        Chat.title.label("snippet"),
        (func.ts_rank(title_vector, tsquery) + 1).label("rank"),  # a title hit ranks above a message hit
        Chat.updated_at.label("at"),
    ).where(Chat.user_id == user_id, title_vector.op("@@")(tsquery))
    union = messages.union_all(titles).subquery()
    return select(union).order_by(union.c.rank.desc(), union.c.at.desc()).limit(limit)
