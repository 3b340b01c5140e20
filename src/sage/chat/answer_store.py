"""Storing a finished answer: exactly once, and through a database outage.

Until it is stored, an answer lives in its buffer (this task's memory, and Valkey for
readers on other tasks). When PostgreSQL cannot be reached, the write is retried with
backoff for as long as that buffer lives, so an outage shorter than that loses nothing;
only when the buffer would expire first does the answer count as not stored, and the
stream's final event says so. Token usage is written in the same transaction as the
message, and every attempt first looks for the message an earlier attempt may have
committed before its connection dropped (the reply lost, not the write), so usage is
counted exactly once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sage.chat import repository as repo
from sage.chat.providers.base import Usage
from sage.observability.metrics import Metrics
from sage.store.chat_tables import ChatMessage
from sage.store.db import Database, is_connection_error

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0


class StoreResult(enum.Enum):
    STORED = "stored"
    CHAT_DELETED = "chat_deleted"  # the chat went while answering: nothing to attach the answer to
    NOT_STORED = "not_stored"  # the database stayed unreachable (or refused the row) past the buffer's life


@dataclass(frozen=True)
class FinishedAnswer:
    """The assistant message as it is stored, with the usage it is charged."""

    message_id: uuid.UUID
    chat_id: uuid.UUID
    user_id: uuid.UUID
    reply_to_id: uuid.UUID
    content: str
    status: str
    meta: dict[str, Any]
    usage: Usage | None  # None: nothing to charge (a cached answer calls no model)


async def store_answer(
    db: Database,
    metrics: Metrics,
    answer: FinishedAnswer,
    *,
    until: float,
) -> StoreResult:
    """Write `answer`, retrying connection failures with backoff until loop time `until`."""
    loop = asyncio.get_running_loop()
    delay = FIRST_RETRY_SECONDS
    attempts = 0
    while True:
        attempts += 1
        try:
            await _write_once(db, answer)
        except IntegrityError:
            log.info("chat deleted while answering; answer dropped", extra={"message_id": str(answer.message_id)})
            return StoreResult.CHAT_DELETED
        except Exception as exc:
            if not is_connection_error(exc):
                log.exception("the database refused the answer", extra={"message_id": str(answer.message_id)})
                metrics.incr("ChatAnswersNotStored", reason="refused")
                return StoreResult.NOT_STORED
            if attempts == 1:
                metrics.incr("ChatAnswerStoreDelayed")
                log.warning(
                    "database unreachable; retrying the answer's write while its buffer lives",
                    extra={"message_id": str(answer.message_id), "error": type(exc).__name__},
                )
            wait = delay * (0.5 + random.random() / 2)
            if loop.time() + wait >= until:
                log.error(
                    "answer not stored: the database stayed unreachable for the buffer's life",
                    extra={"message_id": str(answer.message_id), "attempts": attempts},
                )
                metrics.incr("ChatAnswersNotStored", reason="database_unreachable")
                return StoreResult.NOT_STORED
            await asyncio.sleep(wait)
            delay = min(MAX_RETRY_SECONDS, delay * 2)
            continue
        if attempts > 1:
            log.info(
                "answer stored after the database came back",
                extra={"message_id": str(answer.message_id), "attempts": attempts},
            )
        return StoreResult.STORED


async def _write_once(db: Database, answer: FinishedAnswer) -> None:
    async with db.session() as session:
        already = await session.scalar(select(ChatMessage.id).where(ChatMessage.id == answer.message_id))
        if already is not None:
            return  # an earlier attempt committed; its acknowledgement was lost with the connection
        await repo.add_message(
            session,
            message_id=answer.message_id,
            chat_id=answer.chat_id,
            role="assistant",
            content=answer.content,
            status=answer.status,
            meta=answer.meta,
            reply_to_id=answer.reply_to_id,
            unverified=answer.meta.get("unverified_claims"),
        )
        await repo.touch_chat(session, chat_id=answer.chat_id)
        if answer.usage is not None:
            await repo.add_token_usage(
                session, user_id=answer.user_id, day=datetime.now(UTC).date(), usage=answer.usage
            )
        await session.commit()
