"""What an answer carries to the model and leaves behind: prompt, metrics, shutdown."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from sage.store.chat_tables import ChatMessage
from tests.chat.fake_anthropic import Reply
from tests.chat.support import SSEStream, ask, eventually, iter_sse, new_chat, register


async def test_the_model_gets_the_live_context_history_and_the_users_portfolio(
    chat_settings, live_server, fake_anthropic
):
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        await client.put(
            "/api/v1/portfolio/positions/BTC", json={"quantity": "0.5", "average_cost": "60000"}, headers=headers
        )
        chat_id = await new_chat(client, headers)
        await ask(client, headers, chat_id, "How is ETH?")
        await ask(client, headers, chat_id, "And my portfolio?")
    first, second = (r.body for r in fake_anthropic.requests)
    (static, live), (_, live2) = first["system"], second["system"]
    assert "ETH/USDT: 3,456.78 USDT, 24h change -1.25% (as of 2026-11-22 09:59:58 UTC)" in live["text"]
    assert "BTC/USDT" not in live["text"].split("<market_context>")[1].split("Crypto Fear")[0]
    assert "Crypto Fear & Greed Index: 72 (Greed)" in live["text"]
    assert "- BTC/USDT: quantity 0.5, average cost 60,000.00, price 97,250.50" in live2["text"]
    assert "State only figures that appear in the context" in static["text"]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][-1]["content"] == "And my portfolio?"


async def test_latency_tokens_grounding_and_stream_gauges_are_recorded(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(
        Reply(chunks=["BTC/USDT is at $97,250.50 ", "and up 9.99%."], input_tokens=10, output_tokens=4)
    )
    server = await live_server(chat_settings())
    metrics = server.runtime.metrics
    async with server.client() as client:
        headers = await register(client)
        await ask(client, headers, await new_chat(client, headers), "btc?")
    await eventually(lambda: _zero_streams(server))
    assert len(metrics.samples("FirstTokenLatency", provider="anthropic")) == 1
    assert len(metrics.samples("ChatTotalLatency", provider="anthropic")) == 1
    assert metrics.value("TokensUsed", kind="input") == 10 and metrics.value("TokensUsed", kind="output") == 4
    assert metrics.value("GroundingEvaluated", level="claim") == 2
    assert metrics.value("GroundingUnverified", level="claim") == 1
    assert metrics.value("HallucinationRate", level="response") == 100.0
    assert metrics.value("LLMQueueSize") == 0


async def _zero_streams(server) -> bool:
    return server.runtime.metrics.value("ActiveStreams") == 0 and server.runtime.services.chat.active_streams == 0


async def test_the_unverified_claims_are_stored_with_the_message(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["ETH is at $4,100 today."]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        stream = await ask(client, headers, await new_chat(client, headers), "eth?")
    assert stream.last.data["grounding"]["unverified_claims"][0]["text"] == "$4,100"
    span = {"text": "$4,100", "start": 10, "end": 16, "reason": "value_mismatch"}
    assert span.items() <= stream.last.data["unverified"][0].items()
    async with server.runtime.db.session() as session:
        row = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalar_one()
    assert [span.items() <= figure.items() for figure in row.unverified] == [True]
    assert row.unverified == stream.last.data["unverified"] == row.meta["unverified_claims"]
    assert row.meta["context"]["prices"][0]["symbol"] == "ETH/USDT"


async def test_shutting_down_cuts_answers_short_and_saves_them(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["Saved ", "before ", "shutdown"], hold_after_chunks=1))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as r:
            stream = SSEStream()
            async for item in iter_sse(r):
                stream.items.append(item)
                if item == stream.items[-1] and getattr(item, "event", None) == "delta":
                    await server.runtime.services.chat.close()
                if getattr(item, "event", None) in ("done", "error"):
                    break
    assert stream.last.event == "error" and stream.last.data["code"] == "server_shutdown"
    async with asyncio.timeout(20):
        await fake_anthropic.requests[0].client_closed.wait()
    async with server.runtime.db.session() as session:
        row = (
            await session.execute(
                select(ChatMessage).where(ChatMessage.chat_id == uuid.UUID(chat_id), ChatMessage.role == "assistant")
            )
        ).scalar_one()
    assert (row.status, row.content) == ("incomplete", "Saved ")


async def test_deleting_a_chat_mid_answer_stops_the_answer(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["a", "b"], hold_after_chunks=1))
    server = await live_server(chat_settings())
    async with server.client() as client, server.client() as other:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as r:
            async for item in iter_sse(r):
                if getattr(item, "event", None) == "delta":
                    assert (await other.delete(f"/api/v1/chats/{chat_id}", headers=headers)).status_code == 204
                if getattr(item, "event", None) in ("done", "error"):
                    assert item.data["code"] == "chat_deleted"
                    break
    async with asyncio.timeout(20):
        await fake_anthropic.requests[0].client_closed.wait()
    async with server.runtime.db.session() as session:
        assert (await session.execute(select(ChatMessage))).first() is None


async def test_answers_still_stream_and_are_stored_while_valkey_is_down(
    make_settings, database_url, live_server, fake_anthropic
):
    from tests.support.servers import ValkeyProcess

    valkey = ValkeyProcess()
    valkey.start()
    try:
        settings = make_settings(
            database_url=database_url,
            valkey_url=valkey.url,
            llm_provider="anthropic",
            anthropic_api_key="sk-test-not-a-real-key",
            anthropic_base_url=fake_anthropic.base_url,
        )
        fake_anthropic.queue(Reply(chunks=["Still ", "here."]))
        server = await live_server(settings)
        async with server.client() as client:
            headers = await register(client)
            chat_id = await new_chat(client, headers)
            valkey.stop()
            stream = await ask(client, headers, chat_id, "are you there?")
        assert stream.text == "Still here." and stream.last.event == "done"
        async with server.runtime.db.session() as session:
            row = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalar_one()
        assert row.content == "Still here."
        assert server.runtime.metrics.value("ValkeyErrors") > 0
    finally:
        valkey.destroy()
