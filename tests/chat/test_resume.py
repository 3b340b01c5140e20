"""Reconnecting to an answer with Last-Event-ID: live on the same task, live on another
task (through Valkey), and after the answer is stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx

from tests.chat.fake_anthropic import Reply
from tests.chat.support import SSEEvent, SSEStream, ask, eventually, iter_sse, new_chat, read_all, register

WORDS = [f"word{i} " for i in range(8)]


async def _read_until(items: AsyncIterator[SSEEvent | str], deltas: int) -> SSEStream:
    """Read up to the n-th delta. The caller keeps `items`: dropping an unfinished
    generator lets the garbage collector close the response (and the connection)."""
    stream = SSEStream()
    async for item in items:
        stream.items.append(item)
        if len(stream.named("delta")) == deltas:
            break
    return stream


async def _resume(client: httpx.AsyncClient, headers, chat_id: str, message_id: str, last_id: str | None) -> SSEStream:
    extra = {"Last-Event-ID": last_id} if last_id else {}
    async with client.stream(
        "GET", f"/api/v1/chats/{chat_id}/messages/{message_id}/stream", headers={**headers, **extra}
    ) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        return await read_all(response)


async def test_a_reconnect_on_the_same_task_continues_after_the_last_event_without_duplicates(
    chat_settings, live_server, fake_anthropic
):
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(chunks=WORDS, gate=gate, gate_after_chunks=3))
    server = await live_server(chat_settings())
    async with server.client() as first, server.client() as second:
        headers = await register(first)
        chat_id = await new_chat(first, headers)
        async with first.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as response:
            items = iter_sse(response)
            seen = await _read_until(items, 3)
            message_id = seen.named("message")[0].data["assistant_message_id"]
            last_id = seen.events[-1].id
            resumed_task = asyncio.create_task(_resume(second, headers, chat_id, message_id, last_id))
            await asyncio.sleep(0.2)
            assert not resumed_task.done()  # still live: nothing after the last event yet
            gate.set()
            resumed = await resumed_task
    assert seen.text + resumed.text == "".join(WORDS)
    first_resumed = resumed.events[0]
    assert first_resumed.event == "delta"
    assert int(first_resumed.id.split("-")[0]) == int(last_id.split("-")[0]) + 1
    assert resumed.last.event == "done"


async def test_a_reconnect_on_another_task_follows_through_valkey_and_keeps_the_answer_alive(
    chat_settings, live_server, fake_anthropic
):
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(chunks=WORDS, gate=gate, gate_after_chunks=3))
    settings = chat_settings(sse_keepalive_seconds=0.5)
    task_a = await live_server(settings)
    task_b = await live_server(settings)
    async with task_a.client() as first, task_b.client() as second:
        headers = await register(first)
        chat_id = await new_chat(first, headers)
        async with first.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as response:
            items = iter_sse(response)
            seen = await _read_until(items, 3)
            message_id = seen.named("message")[0].data["assistant_message_id"]
            resumed_task = asyncio.create_task(_resume(second, headers, chat_id, message_id, seen.events[-1].id))
            chat_a = task_a.runtime.services.chat
            await eventually(lambda: chat_a.events.any_reader(uuid.UUID(message_id)))
        # the asking client is gone now, but the answer lives on while task B's reader holds it
        await asyncio.sleep(0.3)
        assert uuid.UUID(message_id) in chat_a.runs
        gate.set()
        resumed = await resumed_task
    assert seen.text + resumed.text == "".join(WORDS)
    assert resumed.last.event == "done" and resumed.last.data["status"] == "complete"
    assert not fake_anthropic.requests[-1].client_closed.is_set()


async def test_with_no_orphan_grace_when_the_only_client_leaves_the_answer_is_cut_and_a_reconnect_gets_what_was_saved(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=WORDS, hold_after_chunks=2))
    server = await live_server(chat_settings(chat_orphan_grace_seconds=0))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as response:
            seen = await _read_until(iter_sse(response), 1)
        message_id = seen.named("message")[0].data["assistant_message_id"]
        async with asyncio.timeout(20):
            await fake_anthropic.requests[-1].client_closed.wait()
        chat = server.runtime.services.chat
        await eventually(lambda: _no_run(chat, message_id))
        resumed = await _resume(client, headers, chat_id, message_id, seen.events[-1].id)
    assert seen.text + resumed.text == "word0 word1 "
    assert resumed.last.event == "error" and resumed.last.data["code"] == "client_disconnected"


async def _no_run(chat, message_id: str) -> bool:
    return uuid.UUID(message_id) not in chat.runs


async def test_after_completion_a_reconnect_gets_the_rest_of_the_stored_message(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=WORDS))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        full = await ask(client, headers, chat_id, "go")
        message_id = full.named("message")[0].data["assistant_message_id"]
        await eventually(lambda: _no_run(server.runtime.services.chat, message_id))
        third_delta = full.named("delta")[2]
        rest = await _resume(client, headers, chat_id, message_id, third_delta.id)
        whole = await _resume(client, headers, chat_id, message_id, None)
    delta_text = "".join(e.data["text"] for e in full.named("delta")[:3])
    assert delta_text + rest.text == "".join(WORDS)
    assert [e.event for e in rest.events] == ["delta", "done"]
    assert rest.last.data == full.last.data  # the same done event as the live stream sent
    assert [e.event for e in whole.events] == ["message", "delta", "done"]
    assert whole.text == "".join(WORDS)


async def test_a_malformed_last_event_id_starts_from_the_beginning(chat_settings, live_server, fake_anthropic):
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        full = await ask(client, headers, chat_id, "go")
        message_id = full.named("message")[0].data["assistant_message_id"]
        await eventually(lambda: _no_run(server.runtime.services.chat, message_id))
        again = await _resume(client, headers, chat_id, message_id, "not-an-id")
    assert again.text == full.text


async def test_resuming_an_unknown_message_or_a_user_message_is_404(chat_settings, live_server, fake_anthropic):
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        full = await ask(client, headers, chat_id, "go")
        user_message_id = full.named("message")[0].data["user_message_id"]
        for message_id in (str(uuid.uuid4()), user_message_id):
            response = await client.get(f"/api/v1/chats/{chat_id}/messages/{message_id}/stream", headers=headers)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
