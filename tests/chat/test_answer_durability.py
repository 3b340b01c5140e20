"""An answer is stored, or its stream says it was not: a PostgreSQL outage loses nothing.

The tests run the app on a PostgreSQL of their own (tests/support/servers.py), stop it
while answers stream, and start it again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from sage.ops import schema
from sage.store.chat_tables import ChatMessage, ChatTokenUsage
from tests.chat.fake_anthropic import Reply
from tests.chat.support import SSEEvent, SSEStream, eventually, iter_sse, new_chat, register
from tests.support.servers import PostgresProcess

ANSWERS = 20


@pytest.fixture
async def own_postgres() -> AsyncIterator[PostgresProcess]:
    server = PostgresProcess()
    await asyncio.to_thread(server.start)
    try:
        await schema.upgrade(server.url)
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


async def _stream_answer(
    client: httpx.AsyncClient, headers: dict[str, str], chat_id: str, question: str, started: list[str]
) -> SSEStream:
    stream = SSEStream()
    async with client.stream(
        "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": question}, headers=headers
    ) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        async for item in iter_sse(response):
            stream.items.append(item)
            if isinstance(item, SSEEvent) and item.event == "delta" and len(stream.named("delta")) == 1:
                started.append(chat_id)
            if isinstance(item, SSEEvent) and item.event in ("done", "error"):
                break
    return stream


async def _start_answers(server, gate: asyncio.Event, fake_anthropic, count: int):
    """`count` answers, each in its own chat, held by the model after their first words."""
    for n in range(count):
        fake_anthropic.queue(
            Reply(
                chunks=[f"Answer {n} ", "ends here."], input_tokens=42, output_tokens=7, gate=gate, gate_after_chunks=1
            )
        )
    client = server.client()
    headers = await register(client)
    chats = [await new_chat(client, headers) for _ in range(count)]
    started: list[str] = []
    streams = [
        asyncio.create_task(_stream_answer(client, headers, chat_id, f"question {n}", started))
        for n, chat_id in enumerate(chats)
    ]

    async def all_started() -> bool:
        return len(started) == count

    await eventually(all_started, timeout=60)
    return client, streams


async def test_answers_finished_while_postgres_is_down_are_stored_once_and_reported_complete(
    chat_settings, live_server, fake_anthropic, own_postgres
):
    gate = asyncio.Event()
    server = await live_server(
        chat_settings(database_url=own_postgres.url, chat_rate_per_minute=1000, db_connect_timeout_seconds=1)
    )
    metrics = server.runtime.metrics
    client, streams = await _start_answers(server, gate, fake_anthropic, ANSWERS)
    try:
        await asyncio.to_thread(own_postgres.stop)
        gate.set()  # every answer finishes while the database is down

        async def all_waiting_for_the_database() -> bool:
            return metrics.value("ChatAnswerStoreDelayed") == ANSWERS

        await eventually(all_waiting_for_the_database, timeout=60)
        assert not any(task.done() for task in streams)  # nobody was told "done" before the answer was stored
        await asyncio.to_thread(own_postgres.start)
        async with asyncio.timeout(90):
            results = await asyncio.gather(*streams)
    finally:
        await client.aclose()

    for stream in results:
        assert stream.last.event == "done", stream.last
        assert stream.last.data["status"] == "complete"
    texts = sorted(stream.text for stream in results)
    async with server.runtime.db.session() as session:
        stored = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalars().all()
        usage = (await session.execute(select(ChatTokenUsage))).scalars().all()
    assert sorted(m.content for m in stored) == texts == sorted(f"Answer {n} ends here." for n in range(ANSWERS))
    assert {m.id for m in stored} == {uuid.UUID(s.last.data["message_id"]) for s in results}
    # charged once each: the day's row adds up exactly what the 20 answers reported
    charged = sum(s.last.data["usage"]["input_tokens"] + s.last.data["usage"]["cache_creation_tokens"] for s in results)
    assert [(u.requests, u.input_tokens, u.output_tokens) for u in usage] == [(ANSWERS, charged, 7 * ANSWERS)]


async def test_an_answer_the_database_never_takes_ends_with_an_error_saying_it_was_not_stored(
    chat_settings, live_server, fake_anthropic, own_postgres
):
    gate = asyncio.Event()
    server = await live_server(
        chat_settings(database_url=own_postgres.url, chat_buffer_keep_seconds=1, db_connect_timeout_seconds=1)
    )
    client, streams = await _start_answers(server, gate, fake_anthropic, 1)
    try:
        await asyncio.to_thread(own_postgres.stop)
        gate.set()
        async with asyncio.timeout(60):
            (stream,) = await asyncio.gather(*streams)
    finally:
        await client.aclose()
    await asyncio.to_thread(own_postgres.start)

    assert stream.text == "Answer 0 ends here."
    assert stream.last.event == "error"
    assert stream.last.data["code"] == "answer_not_stored"
    assert server.runtime.metrics.value("ChatAnswersNotStored", reason="database_unreachable") == 1
    async with server.runtime.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(ChatMessage).where(ChatMessage.role == "assistant")
        )
    assert count == 0
