"""Chats and their stored messages: create, list (cached), rename, read, versions, search, usage.

The chat list is cached for the spec's 30 s under a per-user version token; every write
to a user's chats (create, rename, delete, a new message) replaces the token, so a list
is never served stale after a write. Answering lives in ChatService.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sage.chat import repository as repo
from sage.errors import NotFound
from sage.settings import Settings
from sage.store.cache import Cache
from sage.store.chat_tables import Chat, ChatMessage
from sage.store.db import Database


def chat_json(chat: Chat) -> dict[str, Any]:
    return {
        "id": str(chat.id),
        "title": chat.title,
        "created_at": chat.created_at.isoformat(),
        "updated_at": chat.updated_at.isoformat(),
    }


class ChatLibrary:
    def __init__(self, *, settings: Settings, db: Database, cache: Cache, slots: asyncio.Semaphore) -> None:
        self.settings = settings
        self.db = db
        self.cache = cache
        self.valkey_slots = slots

    # -- chats ----------------------------------------------------------------------------------------
    def _list_version_key(self, user_id: uuid.UUID) -> str:
        return self.cache.key("chats", "ver", user_id)

    async def invalidate_list(self, user_id: uuid.UUID) -> None:
        async with self.valkey_slots:
            await self.cache.set_bytes(self._list_version_key(user_id), uuid.uuid4().hex.encode(), 86_400)

    async def create_chat(self, user_id: uuid.UUID, title: str | None) -> dict[str, Any]:
        async with self.db.session() as session:
            chat = await repo.create_chat(session, user_id=user_id, title=title)
            await session.commit()
        await self.invalidate_list(user_id)
        return chat_json(chat)

    async def list_chats(self, user_id: uuid.UUID, *, limit: int, offset: int) -> dict[str, Any]:
        version = (await self.cache.get_bytes(self._list_version_key(user_id)) or b"0").decode()
        key = self.cache.key("chats", "list", user_id, version, limit, offset)

        async def load() -> dict[str, Any]:
            async with self.db.session() as session:
                chats, total = await repo.list_chats(session, user_id=user_id, limit=limit, offset=offset)
            return {"items": [chat_json(c) for c in chats], "total": total, "limit": limit, "offset": offset}

        return await self.cache.get_or_compute(key, self.cache.ttl.user_chat_list, load)

    async def get_chat(self, user_id: uuid.UUID, chat_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.session() as session:
            chat = await repo.get_chat(session, user_id=user_id, chat_id=chat_id)
        if chat is None:
            raise NotFound("Chat not found")
        return chat_json(chat)

    async def rename_chat(self, user_id: uuid.UUID, chat_id: uuid.UUID, title: str) -> dict[str, Any]:
        async with self.db.session() as session:
            chat = await repo.rename_chat(session, user_id=user_id, chat_id=chat_id, title=title)
            if chat is None:
                raise NotFound("Chat not found")
            await session.commit()
        await self.invalidate_list(user_id)
        return chat_json(chat)

    async def messages(
        self, user_id: uuid.UUID, chat_id: uuid.UUID, *, limit: int, before: int | None
    ) -> tuple[list[ChatMessage], int | None]:
        async with self.db.session() as session:
            if await repo.get_chat(session, user_id=user_id, chat_id=chat_id) is None:
                raise NotFound("Chat not found")
            rows, more = await repo.page_messages(session, chat_id=chat_id, limit=limit, before_seq=before)
        return rows, (rows[0].seq if more and rows else None)

    async def versions(self, user_id: uuid.UUID, chat_id: uuid.UUID, message_id: uuid.UUID) -> list[ChatMessage]:
        async with self.db.session() as session:
            await _owned_chat(session, user_id, chat_id)
            message = await repo.get_message(session, chat_id=chat_id, message_id=message_id)
            if message is not None and message.role == "assistant" and message.reply_to_id is not None:
                message = await repo.get_message(session, chat_id=chat_id, message_id=message.reply_to_id)
            if message is None:
                raise NotFound("Message not found")
            return await repo.turn_versions(session, chat_id=chat_id, question=message)

    async def search(self, user_id: uuid.UUID, query: str, *, limit: int) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            return await repo.search(session, user_id=user_id, query=query, limit=limit)

    async def usage(self, user_id: uuid.UUID) -> dict[str, Any]:
        """Today's (UTC) tokens against the daily budget; the budget counts every token processed."""
        now = datetime.now(UTC)
        async with self.db.session() as session:
            row = await repo.usage_of_day(session, user_id=user_id, day=now.date())
        counts = {
            "input_tokens": row.input_tokens if row else 0,
            "output_tokens": row.output_tokens if row else 0,
            "cache_read_tokens": row.cache_read_tokens if row else 0,
            "requests": row.requests if row else 0,
        }
        used = counts["input_tokens"] + counts["output_tokens"] + counts["cache_read_tokens"]
        budget = self.settings.chat_daily_token_budget
        tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        return {
            "day": now.date().isoformat(),
            "tokens_used": used,
            "daily_budget": budget,
            "remaining": max(0, budget - used),
            **counts,
            "resets_at": tomorrow.isoformat(),
        }


async def _owned_chat(session: Any, user_id: uuid.UUID, chat_id: uuid.UUID) -> Chat:
    chat = await repo.get_chat(session, user_id=user_id, chat_id=chat_id)
    if chat is None:
        raise NotFound("Chat not found")
    return chat
