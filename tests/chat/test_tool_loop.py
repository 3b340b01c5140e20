"""Tool use through the real Anthropic provider against the fake Messages API, end to end over SSE."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from sqlalchemy import select

from sage.store.chat_tables import ChatMessage
from sage.store.market_tables import CandleRow
from tests.chat.fake_anthropic import Reply, ToolUseScript
from tests.chat.support import ask, new_chat, read_all, register


async def add_hourly_candles(db, symbol: str = "BTC/USDT", hours: int = 48) -> datetime:
    """1m candles, one per hour, over the last `hours` hours: open 90,000 + h, close 90,000 + h + 0.5."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = []
    for h in range(hours):
        start = now - timedelta(hours=hours - h)
        base = Decimal(90_000 + h)
        rows.append(
            CandleRow(
                exchange="binance",
                symbol=symbol,
                start=start,
                open=base,
                high=base + 2,
                low=base - 1,
                close=base + Decimal("0.5"),
                volume=Decimal("1.5"),
                ticks=3,
            )
        )
    async with db.session() as session:
        session.add_all(rows)
        await session.commit()
    return now


def _week_ago() -> str:
    return (datetime.now(UTC) - timedelta(days=7)).isoformat()


def _tool_results(body: dict) -> list[dict]:
    return [block for block in body["messages"][-1]["content"] if block["type"] == "tool_result"]


async def test_a_tool_call_runs_and_its_result_goes_back_upstream_and_into_the_stream(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(
        Reply(
            chunks=["Let me look. "],
            input_tokens=30,
            output_tokens=12,
            tool_calls=[
                ToolUseScript("get_candles", {"symbol": "BTC", "interval": "1h", "start": _week_ago()}, id="toolu_1")
            ],
        ),
        Reply(chunks=["BTC rose over the week."], input_tokens=80, output_tokens=6),
    )
    server = await live_server(chat_settings())
    await add_hourly_candles(server.runtime.db)
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "How did BTC do last week?")

    assert [e.event for e in stream.events][:3] == ["message", "delta", "tool"]
    tool = stream.named("tool")[0].data
    assert tool["name"] == "get_candles" and tool["id"] == "toolu_1" and tool["is_error"] is False
    assert tool["arguments"]["symbol"] == "BTC" and tool["duration_ms"] >= 0
    assert tool["summary"].startswith("BTC/USDT 1h candles") and "48 bars" in tool["summary"]
    assert stream.text == "Let me look. BTC rose over the week."

    first, second = (r.body for r in fake_anthropic.requests)
    assert [t["name"] for t in first["tools"]][:3] == ["get_price", "get_candles", "get_fear_greed"]
    assert second["messages"][-2]["role"] == "assistant"
    assert second["messages"][-2]["content"][0] == {"type": "text", "text": "Let me look. "}
    use = second["messages"][-2]["content"][1]
    assert (use["type"], use["id"], use["name"]) == ("tool_use", "toolu_1", "get_candles")
    assert use["input"]["symbol"] == "BTC" and use["input"]["interval"] == "1h"
    (result,) = _tool_results(second)
    assert result["tool_use_id"] == "toolu_1" and result["is_error"] is False
    data = orjson.loads(result["content"])
    assert data["symbol"] == "BTC/USDT" and len(data["candles"]) == 48
    assert data["summary"]["high"] == "90049" and data["summary"]["low"] == "89999"

    done = stream.last.data
    assert done["status"] == "complete"
    # every round counts: input and output of both model calls
    assert done["usage"]["input_tokens"] == 110 and done["usage"]["output_tokens"] == 18
    async with server.runtime.db.session() as session:
        stored = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalar_one()
    assert [t["name"] for t in stored.meta["tools"]] == ["get_candles"]
    assert server.runtime.metrics.value("ChatToolCalls", tool="get_candles", status="ok") == 1


async def test_bad_tool_input_becomes_error_results_and_the_answer_still_completes(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(
        Reply(
            chunks=[""],
            tool_calls=[
                ToolUseScript("get_price", {"symbols": ["NOPE/USDT"]}),
                ToolUseScript("get_candles", {"symbol": "BTC", "interval": "1m", "start": _week_ago()}),
                ToolUseScript("get_candles", raw='{"symbol": "BTC", "interval": '),
                ToolUseScript("get_price", {"symbols": "BTC"}),
                ToolUseScript("launch_rocket", {}),
                ToolUseScript("calculate", {"expression": "__import__('os').system('true')"}),
            ],
        ),
        Reply(chunks=["Sorry, I could not look those up."]),
    )
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "Check some things")

    assert stream.last.event == "done" and stream.last.data["status"] == "complete"
    events = [e.data for e in stream.named("tool")]
    assert len(events) == 6 and all(e["is_error"] for e in events)
    results = _tool_results(fake_anthropic.requests[1].body)
    assert len(results) == 6 and all(r["is_error"] for r in results)
    errors = [orjson.loads(r["content"])["error"] for r in results]
    assert "NOPE/USDT" in errors[0]
    assert re.match(r"That is 1008\d 1m bars; at most 200 per call: use a coarser interval", errors[1])
    assert errors[2] == "The arguments were not valid JSON"
    assert errors[3].startswith("Invalid arguments: symbols")
    assert errors[4].startswith("Unknown tool 'launch_rocket'")
    assert "not allowed" in errors[5]
    # the malformed call goes back upstream as an object, as the API requires
    assert fake_anthropic.requests[1].body["messages"][-2]["content"][2]["input"] == {}


async def test_a_user_reaches_only_their_own_alerts_through_tools(chat_settings, live_server, fake_anthropic):
    server = await live_server(chat_settings())
    async with server.client() as client:
        alice = await register(client)
        bob = await register(client)
        created = await client.post(
            "/api/v1/alerts", json={"symbol": "BTC", "condition": "above", "threshold": "100000"}, headers=alice
        )
        alice_alert = created.json()["id"]
        fake_anthropic.queue(
            Reply(
                chunks=[""],
                tool_calls=[
                    ToolUseScript("list_alerts", {}),
                    ToolUseScript("delete_alert", {"id": alice_alert}),
                    ToolUseScript("create_alert", {"symbol": "ETH", "condition": "below", "threshold": "3000"}),
                ],
            ),
            Reply(chunks=["Done."]),
        )
        chat_id = await new_chat(client, bob)
        await ask(client, bob, chat_id, "Show my alerts, delete that one, and alert me when ETH drops below 3,000")
        bob_alerts = (await client.get("/api/v1/alerts", headers=bob)).json()
        alice_alerts = (await client.get("/api/v1/alerts", headers=alice)).json()

    listed, deleted, made = (orjson.loads(r["content"]) for r in _tool_results(fake_anthropic.requests[1].body))
    assert listed == {"alerts": []}  # Bob does not see Alice's alert
    assert "no alert" in deleted["error"]
    assert made["created"]["symbol"] == "ETH/USDT" and made["created"]["kind"] == "price_below"
    assert [a["id"] for a in alice_alerts] == [alice_alert]
    assert [(a["symbol"], a["kind"], Decimal(a["threshold"])) for a in bob_alerts] == [
        ("ETH/USDT", "price_below", Decimal(3000))
    ]


async def test_the_loop_stops_after_the_max_rounds_and_the_last_round_must_answer_in_text(
    chat_settings, live_server, fake_anthropic
):
    looping = Reply(chunks=[""], tool_calls=[ToolUseScript("get_fear_greed", {"days": 1})])
    fake_anthropic.queue(looping, looping, Reply(chunks=["Enough lookups."]))
    server = await live_server(chat_settings(chat_max_tool_rounds=2))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "Sentiment?")
    assert len(fake_anthropic.requests) == 3
    assert [r.body.get("tool_choice") for r in fake_anthropic.requests] == [None, None, {"type": "none"}]
    assert len(stream.named("tool")) == 2 and stream.text == "Enough lookups."


async def test_resume_after_the_answer_is_stored_replays_the_tool_events(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(
        Reply(chunks=[""], tool_calls=[ToolUseScript("calculate", {"expression": "0.5 * 2"})]),
        Reply(chunks=["Half of 2 is 1."]),
    )
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        live = await ask(client, headers, chat_id, "half of 2?")
        message_id = live.named("message")[0].data["assistant_message_id"]
        url = f"/api/v1/chats/{chat_id}/messages/{message_id}/stream"
        async with client.stream("GET", url, headers=headers) as response:
            replay = await read_all(response)
        tool_id = live.named("tool")[0].id
        async with client.stream("GET", url, headers={**headers, "Last-Event-ID": tool_id}) as response:
            after_tool = await read_all(response)
    assert [e.data for e in replay.named("tool")] == [{**live.named("tool")[0].data}]
    assert replay.named("tool")[0].data["summary"] == "0.5 * 2 = 1"
    assert after_tool.named("tool") == [] and after_tool.text == "Half of 2 is 1."


async def test_a_tool_taking_too_long_is_an_error_result_within_the_tool_timeout(
    chat_settings, live_server, fake_anthropic, fake_market
):
    release = asyncio.Event()
    original = fake_market.consolidated

    async def slow(symbols=None):
        if symbols == ["SOL/USDT"]:
            await release.wait()
        return await original(symbols)

    fake_market.consolidated = slow  # type: ignore[method-assign]
    fake_anthropic.queue(
        Reply(chunks=[""], tool_calls=[ToolUseScript("get_price", {"symbols": ["SOL"]})]),
        Reply(chunks=["The lookup timed out."]),
    )
    server = await live_server(chat_settings(chat_tool_timeout_seconds=0.2))
    try:
        async with server.client() as client:
            headers = await register(client)
            chat_id = await new_chat(client, headers)
            stream = await ask(client, headers, chat_id, "what does that coin cost?")  # no symbol: only the tool asks
    finally:
        release.set()
    (event,) = stream.named("tool")
    assert event.data["is_error"] and "took longer than" in event.data["summary"]
    assert stream.last.data["status"] == "complete"


async def test_get_portfolio_reads_only_the_asking_users_positions(chat_settings, live_server, fake_anthropic):
    server = await live_server(chat_settings())
    async with server.client() as client:
        alice = await register(client)
        bob = await register(client)
        await client.put(
            "/api/v1/portfolio/positions/BTC", json={"quantity": "2", "average_cost": "50000"}, headers=alice
        )
        for headers in (alice, bob):
            fake_anthropic.queue(
                Reply(chunks=[""], tool_calls=[ToolUseScript("get_portfolio", {})]), Reply(chunks=["Here it is."])
            )
            chat_id = await new_chat(client, headers)
            await ask(client, headers, chat_id, "my portfolio?")
    alices, bobs = (orjson.loads(_tool_results(r.body)[0]["content"]) for r in fake_anthropic.requests[1::2])
    assert [(p["symbol"], p["quantity"]) for p in alices["positions"]] == [("BTC/USDT", "2")]
    assert bobs == {"positions": [], "note": "the user has no portfolio yet"}


async def test_tool_rounds_stop_when_the_answer_has_used_the_rest_of_the_daily_budget(
    chat_settings, live_server, fake_anthropic
):
    looping = Reply(
        chunks=[""], input_tokens=3_000, output_tokens=100, tool_calls=[ToolUseScript("get_fear_greed", {})]
    )
    fake_anthropic.queue(looping, Reply(chunks=["Out of budget, here is what I have."]))
    server = await live_server(chat_settings(chat_daily_token_budget=3_000))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "Sentiment?")
    first, second = fake_anthropic.requests
    assert first.body.get("tool_choice") is None  # the first round used up what was left
    assert second.body["tool_choice"] == {"type": "none"}
    assert stream.text == "Out of budget, here is what I have."
