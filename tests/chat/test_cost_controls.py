"""Answer cache, daily token budget, request rate, model queue, and ownership."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from sage.store.chat_tables import ChatMessage, ChatTokenUsage
from tests.chat.fake_anthropic import Reply
from tests.chat.support import ask, eventually, new_chat, read_all, register

GROUNDED = ["BTC/USDT is at ", "$97,250.50 ", "(+2.31%)."]


async def _usage_rows(server) -> list[ChatTokenUsage]:
    async with server.runtime.db.session() as session:
        return list((await session.execute(select(ChatTokenUsage))).scalars())


async def test_the_same_question_on_the_same_context_is_answered_from_the_cache_without_tokens(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=GROUNDED, input_tokens=500, output_tokens=9))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        first = await ask(client, headers, await new_chat(client, headers), "What's the BTC price?")
        second_chat = await new_chat(client, headers)
        second = await ask(client, headers, second_chat, "what's the btc price")
    assert len(fake_anthropic.requests) == 1
    assert second.text == first.text
    assert [e.event for e in second.events] == ["message", "delta", "delta", "delta", "done"]
    assert second.named("message")[0].data["cached"] is True
    done = second.last.data
    assert done["cached"] is True
    assert done["usage"]["input_tokens"] == 0 and done["usage"]["output_tokens"] == 0
    rows = await _usage_rows(server)
    prefix = fake_anthropic.requests[0].cache_creation
    assert [(r.input_tokens, r.output_tokens, r.requests) for r in rows] == [(500 + prefix, 9, 1)]
    async with server.runtime.db.session() as session:
        stored = (
            await session.execute(
                select(ChatMessage).where(
                    ChatMessage.chat_id == uuid.UUID(second_chat), ChatMessage.role == "assistant"
                )
            )
        ).scalar_one()
    assert stored.meta["cached"] is True and stored.content == first.text


async def test_a_changed_context_misses_the_cache(chat_settings, live_server, fake_anthropic, fake_market):
    from decimal import Decimal

    from tests.chat.support import Quote

    fake_anthropic.queue(Reply(chunks=GROUNDED), Reply(chunks=["BTC/USDT is at $99,000.00."]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        await ask(client, headers, await new_chat(client, headers), "BTC price?")
        fake_market.quotes["BTC/USDT"] = Quote("BTC/USDT", Decimal("99000.00"), Decimal("4.10"))
        second = await ask(client, headers, await new_chat(client, headers), "BTC price?")
    assert len(fake_anthropic.requests) == 2
    assert second.last.data["cached"] is False


async def test_an_answer_with_unverified_figures_is_not_cached(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["BTC is at $12,345."]), Reply(chunks=["BTC/USDT is at $97,250.50."]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        first = await ask(client, headers, await new_chat(client, headers), "BTC price?")
        second = await ask(client, headers, await new_chat(client, headers), "BTC price?")
    assert first.last.data["grounding"]["unverified"] == 1
    assert second.last.data["cached"] is False
    assert len(fake_anthropic.requests) == 2


async def test_the_daily_token_budget_answers_429_with_retry_after(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(input_tokens=80, output_tokens=30))
    server = await live_server(chat_settings(chat_daily_token_budget=100))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        await ask(client, headers, chat_id, "spend it")
        response = await client.post(f"/api/v1/chats/{chat_id}/messages", json={"content": "more"}, headers=headers)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 86_400
    body = response.json()["error"]
    assert body["code"] == "rate_limited"
    assert body["details"]["scope"] == "chat_daily_tokens"
    assert len(fake_anthropic.requests) == 1


async def test_the_per_user_request_rate_answers_429_with_retry_after(chat_settings, live_server, fake_anthropic):
    server = await live_server(chat_settings(chat_rate_per_minute=1))
    async with server.client() as client:
        headers = await register(client)
        other = await register(client)
        chat_id = await new_chat(client, headers)
        await ask(client, headers, chat_id, "one")
        response = await client.post(f"/api/v1/chats/{chat_id}/messages", json={"content": "two"}, headers=headers)
        other_chat = await new_chat(client, other)
        others = await ask(client, other, other_chat, "mine")  # a bucket per user
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["details"]["scope"] == "chat"
    assert others.last.event == "done"


async def test_a_full_model_queue_answers_503_with_retry_after(chat_settings, live_server, fake_anthropic):
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(gate=gate, gate_after_chunks=1))
    server = await live_server(chat_settings(llm_max_concurrency=1, llm_queue_size=0))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "slow"}, headers=headers
        ) as holding:
            await fake_anthropic.wait_for_requests(1)
            refused = await client.post(f"/api/v1/chats/{chat_id}/messages", json={"content": "x"}, headers=headers)
            gate.set()
            finished = await read_all(holding)
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["details"]["reason"] == "model_queue_full"
    assert finished.last.event == "done"
    assert len(fake_anthropic.requests) == 1


async def test_a_queued_question_waits_for_a_permit_and_then_streams(chat_settings, live_server, fake_anthropic):
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(chunks=["first"], gate=gate, gate_after_chunks=0), Reply(chunks=["second"]))
    server = await live_server(chat_settings(llm_max_concurrency=1, llm_queue_size=5))
    chat = server.runtime.services.chat
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        first = asyncio.create_task(ask(client, headers, chat_id, "first"))
        await fake_anthropic.wait_for_requests(1)
        second = asyncio.create_task(ask(client, headers, await new_chat(client, headers), "second"))
        await eventually(lambda: _queued(chat, 1))
        assert len(fake_anthropic.requests) == 1  # the second waits: the permit is held for the whole stream
        gate.set()
        results = await asyncio.gather(first, second)
    assert [r.text for r in results] == ["first", "second"]
    assert results[1].last.data["latency_ms"]["queued"] > 0


async def _queued(chat, count: int) -> bool:
    return chat.calls.waiting == count


async def test_time_in_the_queue_is_bounded_and_ends_in_an_error_event(chat_settings, live_server, fake_anthropic):
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(gate=gate, gate_after_chunks=0))
    server = await live_server(chat_settings(llm_max_concurrency=1, llm_queue_size=5, llm_queue_timeout_seconds=0.3))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        holding = asyncio.create_task(ask(client, headers, chat_id, "hold"))
        await fake_anthropic.wait_for_requests(1)
        timed_out = await ask(client, headers, await new_chat(client, headers), "waits too long")
        gate.set()
        await holding
    assert timed_out.last.event == "error"
    assert timed_out.last.data["code"] == "queue_timeout"
    assert len(fake_anthropic.requests) == 1


async def test_another_users_chat_answers_404_everywhere(chat_settings, live_server, fake_anthropic):
    server = await live_server(chat_settings())
    async with server.client() as client:
        owner = await register(client)
        stranger = await register(client)
        chat_id = await new_chat(client, owner)
        answer = await ask(client, owner, chat_id, "private")
        message_id = answer.named("message")[0].data["assistant_message_id"]
        responses = [
            await client.get(f"/api/v1/chats/{chat_id}", headers=stranger),
            await client.patch(f"/api/v1/chats/{chat_id}", json={"title": "mine now"}, headers=stranger),
            await client.get(f"/api/v1/chats/{chat_id}/messages", headers=stranger),
            await client.post(f"/api/v1/chats/{chat_id}/messages", json={"content": "hi"}, headers=stranger),
            await client.get(f"/api/v1/chats/{chat_id}/messages/{message_id}/stream", headers=stranger),
            await client.delete(f"/api/v1/chats/{chat_id}", headers=stranger),
        ]
        still_there = await client.get(f"/api/v1/chats/{chat_id}", headers=owner)
    assert [r.status_code for r in responses] == [404] * 6
    assert all(r.json()["error"]["code"] == "not_found" for r in responses)
    assert still_there.json()["title"] != "mine now"
    assert len(fake_anthropic.requests) == 1
