"""Resuming an answer on another task: no answer is cancelled under a reader, and a Valkey
outage costs no answer.

Two app instances share one PostgreSQL and one Valkey of the test's own (which the tests
stop). The answer runs on `asking`; the client resumes it on `other`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from sage.store.chat_tables import ChatMessage
from tests.chat.fake_anthropic import Reply
from tests.chat.support import SSEEvent, SSEStream, iter_sse, new_chat, read_all, register
from tests.support.servers import ValkeyProcess

ANSWERS = 10


@pytest.fixture
async def own_valkey() -> AsyncIterator[ValkeyProcess]:
    server = ValkeyProcess()
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


@pytest.fixture
async def two_tasks(chat_settings, live_server, own_valkey):
    # keep-alive (and so the reader lease, 3 intervals) long enough for a loop shared by two apps and the test
    settings = chat_settings(valkey_url=own_valkey.url, sse_keepalive_seconds=2, chat_rate_per_minute=1000)
    return await live_server(settings), await live_server(settings)


class OpenAnswer:
    """An answer streaming from the asking task, read up to its first words."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], chat_id: str) -> None:
        self.client, self.headers, self.chat_id = client, headers, chat_id
        self.seen = SSEStream()
        self._cm: object | None = None
        self.response: httpx.Response | None = None

    async def open(self, question: str) -> None:
        self._cm = self.client.stream(
            "POST", f"/api/v1/chats/{self.chat_id}/messages", json={"content": question}, headers=self.headers
        )
        self.response = await self._cm.__aenter__()  # type: ignore[attr-defined]
        # held, not dropped: a collected generator would be closed, and the connection with it
        self.events = iter_sse(self.response)
        async for item in self.events:
            self.seen.items.append(item)
            if isinstance(item, SSEEvent) and item.event == "delta":
                return

    @property
    def message_id(self) -> str:
        return str(self.seen.named("message")[0].data["assistant_message_id"])

    @property
    def resume_path(self) -> str:
        return f"/api/v1/chats/{self.chat_id}/messages/{self.message_id}/stream"

    async def close(self) -> None:
        """The client lets go of the asking task's connection."""
        await self._cm.__aexit__(None, None, None)  # type: ignore[attr-defined]


async def _resume(client: httpx.AsyncClient, path: str, headers: dict[str, str], last_id: str, opened: asyncio.Event):
    async with client.stream("GET", path, headers={**headers, "Last-Event-ID": last_id}) as response:
        assert response.status_code == 200
        opened.set()
        return await read_all(response)


async def _stored_answers(server) -> list[tuple[str, str]]:
    async with server.runtime.db.session() as session:
        rows = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalars().all()
    return sorted((m.content, m.status) for m in rows)


async def test_a_reader_that_connected_elsewhere_before_the_old_connection_closed_keeps_the_answer(
    two_tasks, fake_anthropic
):
    asking, other = two_tasks
    gate = asyncio.Event()
    for n in range(ANSWERS):
        fake_anthropic.queue(Reply(chunks=[f"Answer {n} ", "ends here."], gate=gate, gate_after_chunks=1))
    async with asking.client() as a, other.client() as b:
        headers = await register(a)
        resumed: list[asyncio.Task[SSEStream]] = []
        for n in range(ANSWERS):
            answer = OpenAnswer(a, headers, await new_chat(a, headers))
            await answer.open(f"question {n}")
            opened = asyncio.Event()
            last_id = answer.seen.events[-1].id or ""
            resumed.append(asyncio.create_task(_resume(b, answer.resume_path, headers, last_id, opened)))
            await asyncio.wait_for(opened.wait(), 30)  # the new stream is open...
            await answer.close()  # ...and only then does the client drop the old one
        await asyncio.sleep(0)
        gate.set()
        async with asyncio.timeout(90):
            streams = await asyncio.gather(*resumed)

    assert [s.last.data["status"] for s in streams] == ["complete"] * ANSWERS, [s.last.data for s in streams]
    assert await _stored_answers(asking) == sorted((f"Answer {n} ends here.", "complete") for n in range(ANSWERS))


async def test_a_reader_whose_valkey_goes_away_gets_the_rest_from_storage(two_tasks, fake_anthropic, own_valkey):
    asking, other = two_tasks
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(chunks=["Before ", "after."], gate=gate, gate_after_chunks=1))
    async with asking.client() as a, other.client() as b:
        headers = await register(a)
        answer = OpenAnswer(a, headers, await new_chat(a, headers))
        await answer.open("btc?")
        first_id = answer.seen.events[0].id or ""  # after `message`: the reader on `other` replays the delta
        async with b.stream("GET", answer.resume_path, headers={**headers, "Last-Event-ID": first_id}) as response:
            seen = SSEStream()
            events = iter_sse(response)
            async for item in events:
                seen.items.append(item)
                if isinstance(item, SSEEvent) and item.event == "delta":
                    break  # following the buffer through Valkey
            await asyncio.to_thread(own_valkey.stop)
            await answer.close()
            gate.set()
            async with asyncio.timeout(90):
                async for item in events:
                    seen.items.append(item)
                    if isinstance(item, SSEEvent) and item.event in ("done", "error"):
                        break

    assert seen.text == "Before after."
    assert seen.last.event == "done" and seen.last.data["status"] == "complete"
    assert await _stored_answers(asking) == [("Before after.", "complete")]


async def test_a_resume_while_valkey_is_down_waits_for_the_stored_answer(two_tasks, fake_anthropic, own_valkey):
    asking, other = two_tasks
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(chunks=["Before ", "after."], gate=gate, gate_after_chunks=1))
    async with asking.client() as a, other.client() as b:
        headers = await register(a)
        answer = OpenAnswer(a, headers, await new_chat(a, headers))
        await answer.open("btc?")
        await asyncio.to_thread(own_valkey.stop)
        opened = asyncio.Event()
        last_id = answer.seen.events[-1].id or ""
        resumed = asyncio.create_task(_resume(b, answer.resume_path, headers, last_id, opened))
        await asyncio.wait_for(opened.wait(), 30)
        await answer.close()  # nobody reads on the asking task, and Valkey cannot say who reads elsewhere
        gate.set()
        async with asyncio.timeout(90):
            rest = await resumed

    assert answer.seen.text + rest.text == "Before after."
    assert rest.last.event == "done" and rest.last.data["status"] == "complete"
    assert await _stored_answers(asking) == [("Before after.", "complete")]
