"""Serving a reconnect from storage: a stored answer as a stream, and waiting for one.

`stored_events` continues a stored answer after the client's last event without repeating
text. `once_stored` serves a reader whose answer is live on another task while Valkey (its
buffer) cannot be read: the answer's task completes and stores it regardless, so the
reader waits for it in PostgreSQL, with keep-alives, and gets the rest from there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from sage.chat import repository as repo
from sage.chat.sse import DELTA, DONE, ERROR, MESSAGE, TOOL, ResumePoint, StreamEvent, StreamItems
from sage.store.chat_tables import ChatMessage
from sage.store.db import Database, is_connection_error

STORED_POLL_SECONDS = 0.5  # how often a reader that cannot read Valkey looks for the stored answer


async def once_stored(
    db: Database,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
    last: ResumePoint | None,
    *,
    wait: float,
    keepalive: float,
) -> StreamItems:
    """The rest of an answer after `last`, served once it is stored: for when its buffer
    cannot be read. Its task finishes and stores it regardless (an unknown reader keeps
    an answer running), so this waits as long as an answer may take and its write may
    be retried, with keep-alives, then says the stream was lost."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait
    quiet_since = loop.time()
    while loop.time() < give_up:
        try:
            async with db.session() as session:
                stored = await repo.get_message(session, chat_id=chat_id, message_id=message_id)
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            stored = None
        if stored is not None and stored.role == "assistant":
            async for item in stored_events(stored, last):
                yield item
            return
        await asyncio.sleep(STORED_POLL_SECONDS)
        if loop.time() - quiet_since >= keepalive:
            quiet_since = loop.time()
            yield None
    yield stream_lost(message_id)(last.seq if last else 0, last.chars if last else 0)


def stream_lost(message_id: uuid.UUID) -> Callable[[int, int], StreamEvent]:
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
