"""Answers streamed over SSE from a real uvicorn server, with the fake Anthropic upstream."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from sage.store.chat_tables import ChatMessage, ChatTokenUsage
from tests.chat.fake_anthropic import Reply
from tests.chat.support import ask, eventually, iter_sse, new_chat, read_all, register


async def _assistant_rows(server, chat_id: str) -> list[ChatMessage]:
    async with server.runtime.db.session() as session:
        result = await session.execute(
            select(ChatMessage).where(ChatMessage.chat_id == uuid.UUID(chat_id), ChatMessage.role == "assistant")
        )
        return list(result.scalars())


async def test_a_full_answer_streams_in_order_and_is_stored_once(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["BTC/USDT is at ", "$97,250.50", ", up 2.31% today."], input_tokens=321))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "What is bitcoin doing?")

    names = [e.event for e in stream.events]
    assert names == ["message", "delta", "delta", "delta", "done"]
    assert stream.text == "BTC/USDT is at $97,250.50, up 2.31% today."
    done = stream.last.data
    assert done["status"] == "complete"
    assert done["usage"]["input_tokens"] == 321
    assert done["usage"]["output_tokens"] == 3
    assert done["latency_ms"]["first_token"] is not None
    assert done["grounding"]["claims"] == 2 and done["grounding"]["unverified"] == 0
    assert [e.id for e in stream.events] == ["1-0", "2-15", "3-25", "4-42", "5-42"]

    rows = await _assistant_rows(server, chat_id)
    assert len(rows) == 1
    assert rows[0].content == stream.text
    assert rows[0].status == "complete"
    assert str(rows[0].id) == stream.events[0].data["assistant_message_id"]
    assert rows[0].meta["provider"] == "anthropic" and rows[0].meta["cached"] is False
    assert rows[0].meta["usage"]["input_tokens"] == 321


async def test_the_stream_opens_with_headers_and_a_keepalive_before_the_model_answers(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(first_token_delay=1.0))
    server = await live_server(chat_settings(sse_keepalive_seconds=0.2))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "hi"}, headers=headers
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "no-cache" in response.headers["cache-control"]
            assert response.headers["x-accel-buffering"] == "no"
            assert "content-encoding" not in response.headers
            stream = await read_all(response)
    assert stream.items[0] == ": keepalive"
    first_delta = stream.items.index(stream.named("delta")[0])
    message = stream.items.index(stream.named("message")[0])
    assert ": keepalive" in stream.items[message:first_delta]
    assert stream.last.event == "done"


async def test_token_usage_is_recorded_per_user_per_day(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(input_tokens=100, output_tokens=20), Reply(input_tokens=50, output_tokens=5))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        await ask(client, headers, chat_id, "first question")
        await ask(client, headers, chat_id, "second question")
    async with server.runtime.db.session() as session:
        row = (await session.execute(select(ChatTokenUsage))).scalar_one()
    prefix = fake_anthropic.requests[0].cache_creation  # the cached prefix: written once, then read
    assert prefix > 0 and fake_anthropic.requests[1].cache_read == prefix
    # the daily row counts cache writes as input and cache reads apart
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.requests) == (150 + prefix, 25, prefix, 2)
    assert server.runtime.metrics.value("TokensUsed", kind="input") == 150
    assert server.runtime.metrics.value("TokensUsed", kind="cache_creation") == prefix
    assert server.runtime.metrics.value("TokensUsed", kind="cache_read") == prefix
    assert server.runtime.metrics.value("TokensUsed", kind="output") == 25


async def test_with_no_orphan_grace_a_client_disconnect_cancels_the_upstream_call_and_keeps_the_partial_answer(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=["Partial ", "answer ", "never ", "finished"], hold_after_chunks=2))
    server = await live_server(chat_settings(chat_orphan_grace_seconds=0))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        received = ""
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "tell me"}, headers=headers
        ) as response:
            async for item in iter_sse(response):
                if getattr(item, "event", None) == "delta":
                    received += item.data["text"]
                    if received == "Partial answer ":
                        break  # leaving the block closes the connection
    upstream = fake_anthropic.requests[-1]
    async with asyncio.timeout(20):
        await upstream.client_closed.wait()
    rows = await eventually(lambda: _assistant_rows(server, chat_id))
    assert len(rows) == 1
    assert rows[0].status == "incomplete"
    assert rows[0].content == "Partial answer "
    assert rows[0].meta["error"]["code"] == "client_disconnected"
    assert rows[0].meta["usage"]["input_tokens"] == 42
    # nothing else is saved later for the same answer
    await asyncio.sleep(0.2)
    assert len(await _assistant_rows(server, chat_id)) == 1


async def test_a_rate_limit_before_the_first_token_is_retried_without_duplicating_text(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(
        Reply(status=429, error_type="rate_limit_error", retry_after="0"),
        Reply(status=529, error_type="overloaded_error"),
        Reply(chunks=["Only ", "once."]),
    )
    server = await live_server(chat_settings(llm_max_retries=2))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "hello")
    assert stream.last.event == "done"
    assert stream.text == "Only once."
    assert len(fake_anthropic.requests) == 3
    rows = await _assistant_rows(server, chat_id)
    assert [r.content for r in rows] == ["Only once."]


async def test_a_dropped_connection_before_the_first_token_is_retried(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(drop_after_chunks=0), Reply(chunks=["Recovered."]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "hello")
    assert stream.text == "Recovered."
    assert len(fake_anthropic.requests) == 2


async def test_retries_stop_when_the_provider_keeps_refusing(chat_settings, live_server, fake_anthropic):
    refusal = Reply(status=529, error_type="overloaded_error")
    fake_anthropic.queue(refusal, refusal, refusal)
    server = await live_server(chat_settings(llm_max_retries=1))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "hello")
    assert stream.last.event == "error"
    assert stream.last.data["code"] == "overloaded"
    assert len(fake_anthropic.requests) == 2
    rows = await _assistant_rows(server, chat_id)
    assert len(rows) == 1 and rows[0].status == "error" and rows[0].content == ""


async def test_a_retry_after_beyond_the_deadline_is_not_waited_for(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(status=429, error_type="rate_limit_error", retry_after="3600"))
    server = await live_server(chat_settings(chat_request_deadline_seconds=30))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "hello")
    assert stream.last.event == "error"
    assert stream.last.data["code"] == "rate_limited"
    assert stream.last.data["retry_after"] == 3600
    assert len(fake_anthropic.requests) == 1


async def test_an_error_event_mid_stream_ends_with_an_error_and_keeps_the_partial_answer(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=["Half ", "an ", "answer"], error_after_chunks=2, error_type="overloaded_error"))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "hello")
    assert stream.text == "Half an "
    assert stream.last.event == "error"
    assert stream.last.data["code"] == "overloaded"
    assert stream.last.data["status"] == "error"
    assert len(fake_anthropic.requests) == 1  # never retried after text went out
    rows = await _assistant_rows(server, chat_id)
    assert len(rows) == 1 and rows[0].status == "error" and rows[0].content == "Half an "


async def test_an_abrupt_close_mid_stream_ends_with_an_error_and_keeps_the_partial_answer(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=["Cut ", "off ", "here"], drop_after_chunks=2))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "hello")
    assert stream.text == "Cut off "
    assert stream.last.data["code"] == "upstream_unavailable"
    assert len(fake_anthropic.requests) == 1
    rows = await _assistant_rows(server, chat_id)
    assert [(r.status, r.content) for r in rows] == [("error", "Cut off ")]


async def test_the_user_message_and_answer_are_linked(chat_settings, live_server, fake_anthropic):
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "hello")
        page = (await client.get(f"/api/v1/chats/{chat_id}/messages", headers=headers)).json()
    ids = stream.named("message")[0].data
    assert [(m["role"], m["id"]) for m in page["items"]] == [
        ("user", ids["user_message_id"]),
        ("assistant", ids["assistant_message_id"]),
    ]
    assert page["items"][1]["reply_to_id"] == ids["user_message_id"]
    async with server.runtime.db.session() as session:
        total = await session.scalar(select(func.count()).select_from(ChatMessage))
    assert total == 2


async def test_an_answer_cut_by_max_tokens_is_stored_incomplete(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["Long ", "answer ", "cut"], stop_reason="max_tokens"))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "tell me everything")
    assert stream.last.event == "done"
    assert stream.last.data["status"] == "incomplete" and stream.last.data["stop_reason"] == "max_tokens"
    rows = await _assistant_rows(server, chat_id)
    assert [(r.status, r.content) for r in rows] == [("incomplete", "Long answer cut")]
