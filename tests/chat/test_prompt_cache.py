"""Prompt caching: the static prefix (tools, instructions) is cached; the live part follows it."""

from __future__ import annotations

from sqlalchemy import select

from sage.store.chat_tables import ChatMessage
from tests.chat.fake_anthropic import MIN_CACHEABLE_TOKENS, Reply, cached_prefix, estimate_tokens
from tests.chat.support import ask, new_chat, register


async def test_the_static_prefix_comes_first_with_breakpoints_and_the_live_data_after(
    chat_settings, live_server, fake_anthropic
):
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        await ask(client, headers, chat_id, "How is BTC?")
    body = fake_anthropic.requests[0].body
    tools, (static, live) = body["tools"], body["system"]
    assert tools[-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in t for t in tools[:-1])
    assert static["cache_control"] == {"type": "ephemeral"} and "cache_control" not in live
    # nothing that changes per question, user or minute is inside the cached prefix
    assert "Current time" not in static["text"] and "97,250.50" not in static["text"]
    assert "Current time" in live["text"] and "97,250.50" in live["text"]
    assert estimate_tokens(cached_prefix(body)) >= 2 * MIN_CACHEABLE_TOKENS


async def test_the_second_question_in_a_chat_reads_the_prefix_from_cache(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(input_tokens=40), Reply(input_tokens=60))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        first = await ask(client, headers, chat_id, "How is BTC?")
        second = await ask(client, headers, chat_id, "And ETH?")
    prefix = estimate_tokens(cached_prefix(fake_anthropic.requests[0].body))
    assert first.last.data["usage"]["cache_creation_tokens"] == prefix
    assert first.last.data["usage"]["cache_read_tokens"] == 0
    assert second.last.data["usage"]["cache_read_tokens"] == prefix
    assert second.last.data["usage"]["cache_creation_tokens"] == 0
    assert second.last.data["usage"]["input_tokens"] == 60
    async with server.runtime.db.session() as session:
        stored = (
            (
                await session.execute(
                    select(ChatMessage).where(ChatMessage.role == "assistant").order_by(ChatMessage.seq)
                )
            )
            .scalars()
            .all()
        )
    assert [m.meta["usage"]["cache_read_tokens"] for m in stored] == [0, prefix]
    assert server.runtime.metrics.value("TokensUsed", kind="cache_read") == prefix
    assert server.runtime.metrics.value("TokensUsed", kind="cache_creation") == prefix
