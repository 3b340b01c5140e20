"""Chat controls: stop (on any task), answers outliving a disconnect, today's usage."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from sage.chat.controls import ControlChannel
from sage.store.cache_setup import build_cache
from sage.store.chat_tables import ChatMessage
from tests.chat.fake_anthropic import Reply
from tests.chat.support import SSEStream, ask, eventually, iter_sse, new_chat, read_all, register

WORDS = [f"word{i} " for i in range(6)]


async def _assistant(server, chat_id: str) -> ChatMessage | None:
    async with server.runtime.db.session() as session:
        return (
            await session.execute(
                select(ChatMessage).where(ChatMessage.chat_id == uuid.UUID(chat_id), ChatMessage.role == "assistant")
            )
        ).scalar_one_or_none()


async def _first_deltas(response, count: int) -> tuple[SSEStream, object]:
    items = iter_sse(response)
    stream = SSEStream()
    async for item in items:
        stream.items.append(item)
        if len(stream.named("delta")) == count:
            break
    return stream, items


async def test_stop_on_another_task_cancels_the_answer_and_saves_it_as_stopped(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=WORDS, hold_after_chunks=2))
    settings = chat_settings()
    task_a = await live_server(settings)
    task_b = await live_server(settings)
    async with task_a.client() as asking, task_b.client() as other:
        headers = await register(asking)
        chat_id = await new_chat(asking, headers)
        # task B listens on the control channel once it has started answering anything
        task_b.runtime.services.chat.controls.start()
        task_a.runtime.services.chat.controls.start()
        await asyncio.wait_for(task_a.runtime.services.chat.controls.listening.wait(), 10)
        async with asking.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as response:
            seen, items = await _first_deltas(response, 2)
            message_id = seen.named("message")[0].data["assistant_message_id"]
            await eventually(lambda: task_a.runtime.services.chat.events.meta(uuid.UUID(message_id)))
            stopped = await other.post(f"/api/v1/chats/{chat_id}/messages/{message_id}/stop", headers=headers)
            assert stopped.status_code == 202, stopped.text
            assert stopped.json() == {"message_id": message_id, "status": "stopping"}
            rest = SSEStream()
            async for item in items:  # type: ignore[attr-defined]
                rest.items.append(item)
                if getattr(item, "event", None) in ("done", "error"):
                    break
        again = await other.post(f"/api/v1/chats/{chat_id}/messages/{message_id}/stop", headers=headers)
    assert rest.last.event == "done" and rest.last.data["status"] == "stopped"
    assert fake_anthropic.requests[-1].client_closed.is_set()
    stored = await _assistant(task_a, chat_id)
    assert stored is not None and stored.status == "stopped" and stored.content == "word0 word1 "
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


async def test_stop_refuses_another_users_answer_and_unknown_ids(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=WORDS, hold_after_chunks=2))
    server = await live_server(chat_settings())
    async with server.client() as client:
        owner = await register(client)
        intruder = await register(client)
        chat_id = await new_chat(client, owner)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=owner
        ) as response:
            seen, _items = await _first_deltas(response, 1)
            message_id = seen.named("message")[0].data["assistant_message_id"]
            foreign = await client.post(f"/api/v1/chats/{chat_id}/messages/{message_id}/stop", headers=intruder)
            unknown = await client.post(f"/api/v1/chats/{chat_id}/messages/{uuid.uuid4()}/stop", headers=owner)
            malformed = await client.post(f"/api/v1/chats/{chat_id}/messages/not-a-uuid/stop", headers=owner)
            assert uuid.UUID(message_id) in server.runtime.services.chat.runs  # still answering
            done = await client.post(f"/api/v1/chats/{chat_id}/messages/{message_id}/stop", headers=owner)
    assert foreign.status_code == 404 and unknown.status_code == 404
    assert malformed.status_code == 404  # ids are routed as UUIDs: no such resource
    assert done.status_code == 202


async def test_an_answer_outlives_its_reader_for_the_grace_period_and_a_reconnect_resumes_it(
    chat_settings, live_server, fake_anthropic
):
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(chunks=WORDS, gate=gate, gate_after_chunks=2))
    server = await live_server(chat_settings(chat_orphan_grace_seconds=60))
    chat = server.runtime.services.chat
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as response:
            seen, _items = await _first_deltas(response, 2)
        message_id = seen.named("message")[0].data["assistant_message_id"]
        run = chat.runs[uuid.UUID(message_id)]
        await eventually(lambda: _no_readers(run))
        assert not fake_anthropic.requests[-1].client_closed.is_set()  # the model call goes on
        gate.set()  # the model finishes while nobody reads
        await eventually(lambda: _assistant(server, chat_id))
        url = f"/api/v1/chats/{chat_id}/messages/{message_id}/stream"
        async with client.stream("GET", url, headers={**headers, "Last-Event-ID": seen.events[-1].id}) as response:
            resumed = await read_all(response)
    assert seen.text + resumed.text == "".join(WORDS)
    assert resumed.last.event == "done" and resumed.last.data["status"] == "complete"
    stored = await _assistant(server, chat_id)
    assert stored is not None and stored.status == "complete"


async def _no_readers(run) -> bool:
    return run.channel.consumers == 0


async def test_usage_reports_todays_tokens_against_the_budget(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(input_tokens=100, output_tokens=20))
    server = await live_server(chat_settings(chat_daily_token_budget=50_000))
    async with server.client() as client:
        headers = await register(client)
        before = (await client.get("/api/v1/users/me/usage", headers=headers)).json()
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "hi")
        after = (await client.get("/api/v1/users/me/usage", headers=headers)).json()
        anonymous = await client.get("/api/v1/users/me/usage")
    assert before["tokens_used"] == 0 and before["remaining"] == 50_000 and before["requests"] == 0
    usage = stream.last.data["usage"]
    total = usage["input_tokens"] + usage["output_tokens"] + usage["cache_read_tokens"] + usage["cache_creation_tokens"]
    assert after["tokens_used"] == total and after["remaining"] == 50_000 - total
    assert after["output_tokens"] == 20 and after["requests"] == 1 and after["daily_budget"] == 50_000
    assert anonymous.status_code == 401


async def test_a_stop_sent_while_no_listener_was_subscribed_is_applied_by_the_sweep(make_settings, valkey_url):
    cache = build_cache(make_settings(valkey_url=valkey_url))
    received: list[dict] = []
    try:
        await ControlChannel(cache, received.append, list).send({"stop": "m1"})
        listener = ControlChannel(cache, received.append, lambda: [("m1", "c1"), ("m2", "c2")])
        listener.start()

        async def swept() -> bool:
            return bool(received)

        await eventually(swept)
        await listener.close()
    finally:
        await cache.close()
    assert received == [{"stop": "m1"}]


async def test_deleting_the_chat_on_another_task_cancels_its_answer_at_once(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=WORDS, hold_after_chunks=2))
    settings = chat_settings(chat_orphan_grace_seconds=60)
    task_a = await live_server(settings)
    task_b = await live_server(settings)
    async with task_a.client() as asking, task_b.client() as other:
        headers = await register(asking)
        chat_id = await new_chat(asking, headers)
        async with asking.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as response:
            _seen, _items = await _first_deltas(response, 2)
            await asyncio.wait_for(task_a.runtime.services.chat.controls.listening.wait(), 10)
            deleted = await other.delete(f"/api/v1/chats/{chat_id}", headers=headers)
            assert deleted.status_code == 204
            # the asking client is still reading (and the orphan grace is long): only the
            # deletion, sent through the control channel, can cut the model call
            async with asyncio.timeout(20):
                await fake_anthropic.requests[-1].client_closed.wait()
