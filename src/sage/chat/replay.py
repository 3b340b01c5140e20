"""Answers as streams outside their live run: a stored answer replayed after a reconnect,
and the closing event when a run on another task vanished."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Any

from sage.chat.sse import DELTA, DONE, ERROR, MESSAGE, TOOL, ResumePoint, StreamEvent
from sage.store.chat_tables import ChatMessage

StreamItems = AsyncGenerator[StreamEvent | None, None]  # None: nothing happened for a keep-alive interval


def gone_event(message_id: uuid.UUID) -> Any:
    def closing(seq: int, chars: int) -> StreamEvent:
        return StreamEvent(
            seq=seq + 1,
            event=ERROR,
            data={
                "message_id": str(message_id),
                "status": "incomplete",
                "code": "stream_lost",
                "message": "The answer's stream was lost; reload the chat to see what was saved.",
            },
            chars=chars,
        )

    return closing


async def stored_events(message: ChatMessage, last: ResumePoint | None) -> StreamItems:
    """A stored answer as a stream, continuing after `last` without repeating text."""
    content = message.content
    seq = last.seq if last else 0
    chars = min(last.chars, len(content)) if last else 0
    if last is None:
        seq += 1
        yield StreamEvent(
            seq,
            MESSAGE,
            {
                "chat_id": str(message.chat_id),
                "user_message_id": str(message.reply_to_id) if message.reply_to_id else None,
                "assistant_message_id": str(message.id),
                "cached": bool(message.meta.get("cached")),
                "provider": message.meta.get("provider"),
                "model": message.meta.get("model"),
                "stored": True,
            },
            0,
        )
    seen = last.seq if last else 0
    for tool in message.meta.get("tools") or ():
        # tool events the reader has not seen (by their live seq), before the rest of the text;
        # their ids carry the reader's text position, so a later resume neither skips nor repeats
        if int(tool.get("seq", 0)) > seen:
            seq += 1
            yield StreamEvent(seq, TOOL, {k: v for k, v in tool.items() if k != "seq"}, chars)
    if chars < len(content):
        seq += 1
        yield StreamEvent(seq, DELTA, {"text": content[chars:]}, len(content))
    terminal = message.meta.get("terminal") or {}
    event = ERROR if terminal.get("event") == ERROR else DONE
    data = dict(terminal.get("data") or {"message_id": str(message.id), "status": message.status})
    yield StreamEvent(seq + 1, event, data, len(content))
