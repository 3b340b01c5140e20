"""The embedded default (offline provider, no API key) shows tool use end to end."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from sage.store.chat_tables import ChatMessage
from tests.chat.support import ask, new_chat, register
from tests.chat.test_tool_loop import add_hourly_candles


@pytest.fixture
def offline_settings(make_settings, database_url, valkey_url):
    def make(**overrides):
        return make_settings(
            database_url=database_url, valkey_url=valkey_url, symbols="BTC/USDT,ETH/USDT,SOL/USDT", **overrides
        )

    return make


async def _assistant(server) -> ChatMessage:
    async with server.runtime.db.session() as session:
        rows = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalars().all()
    return rows[-1]


async def test_a_last_week_question_calls_get_candles_and_answers_from_them(offline_settings, live_server):
    server = await live_server(offline_settings())
    await add_hourly_candles(server.runtime.db, hours=48)
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "How did BTC do last week?")
    (tool,) = stream.named("tool")
    assert tool.data["name"] == "get_candles" and tool.data["arguments"]["interval"] == "1h"
    assert not tool.data["is_error"]
    assert "BTC/USDT went from 90,000.00 to 90,047.50 (+0.05%)" in stream.text
    assert "a high of 90,049.00 and a low of 89,999.00" in stream.text
    done = stream.last.data
    assert done["offline"] is True and done["grounding"]["unverified_claims"] == []


async def test_alert_me_when_eth_drops_below_creates_the_alert(offline_settings, live_server):
    server = await live_server(offline_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "Alert me when ETH drops below 3,000")
        alerts = (await client.get("/api/v1/alerts", headers=headers)).json()
    assert [(a["symbol"], a["condition"], Decimal(a["threshold"])) for a in alerts] == [
        ("ETH/USDT", "below", Decimal(3000))
    ]
    assert stream.named("tool")[0].data["name"] == "create_alert"
    assert "Sage will notify you once when ETH/USDT drops below 3,000.00 USDT." in stream.text


async def test_a_share_of_a_position_is_computed_by_calculate_and_grounded(offline_settings, live_server):
    server = await live_server(offline_settings())
    async with server.client() as client:
        headers = await register(client)
        await client.put(
            "/api/v1/portfolio/positions/BTC", json={"quantity": "1.25", "average_cost": "60000"}, headers=headers
        )
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "What's 0.5 of my BTC worth?")
    (tool,) = stream.named("tool")
    assert tool.data["name"] == "calculate"
    assert tool.data["arguments"] == {"expression": "0.5 * 1.25 * 97250.50"}
    assert "= 60,781.56" in stream.text  # 0.5 x 1.25 x 97,250.50 = 60,781.5625, exactly
    assert stream.last.data["grounding"]["unverified_claims"] == []
    stored = await _assistant(server)
    assert stored.meta["tools"][0]["summary"] == "0.5 * 1.25 * 97250.50 = 60781.5625"


async def test_a_question_needing_no_tool_is_answered_in_one_round(offline_settings, live_server):
    server = await live_server(offline_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "What is the BTC price?")
    assert stream.named("tool") == [] and "BTC/USDT is at 97,250.50 USDT" in stream.text
