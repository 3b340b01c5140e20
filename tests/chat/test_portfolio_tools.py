"""The ledger in the chat: get_portfolio, get_trades and get_performance, offline and through the fake Anthropic API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest

from sage.store.db import Database
from sage.store.market_tables import CandleRow
from tests.chat.fake_anthropic import Reply, ToolUseScript
from tests.chat.support import ask, new_chat, register
from tests.portfolio.support import book, default_portfolio

HOUR = timedelta(hours=1)


@pytest.fixture
def offline_settings(make_settings, database_url, valkey_url):
    def make(**overrides):
        return make_settings(
            database_url=database_url, valkey_url=valkey_url, symbols="BTC/USDT,ETH/USDT,SOL/USDT", **overrides
        )

    return make


async def add_btc_step(db: Database, now: datetime) -> None:
    """One 1m BTC/USDT candle per hour over the last 48 hours: closes at 90,000 until 24 hours
    ago, 99,000 since. Every hourly valuation point in that window finds exactly one close, so
    the figures do not depend on where the hour boundaries fall."""
    rows = []
    for hours_back in range(1, 49):
        price = Decimal(90_000) if hours_back > 24 else Decimal(99_000)
        rows.append(
            CandleRow(
                exchange="binance",
                symbol="BTC/USDT",
                start=now - hours_back * HOUR,
                open=price,
                high=price,
                low=price,
                close=price,
                volume=Decimal(1),
                ticks=1,
            )
        )
    async with db.session() as session:
        session.add_all(rows)
        await session.commit()


async def ledger_with_history(client: httpx.AsyncClient, headers: dict[str, str], now: datetime) -> str:
    """The starting 10,000 USDT moved to 47 hours ago, and 0.05 BTC bought at 90,000 (fee 4.5) 46 hours ago."""
    pid = await default_portfolio(client, headers)
    listed = (await client.get(f"/api/v1/portfolios/{pid}/transactions", headers=headers)).json()
    (deposit,) = listed
    moved = await client.patch(
        f"/api/v1/portfolios/{pid}/transactions/{deposit['id']}",
        json={"executed_at": (now - 47 * HOUR).isoformat()},
        headers=headers,
    )
    assert moved.status_code == 200, moved.text
    bought = await book(
        client,
        headers,
        pid,
        kind="buy",
        symbol="BTC/USDT",
        quantity="0.05",
        price="90000",
        fee="4.5",
        executed_at=(now - 46 * HOUR).isoformat(),
    )
    assert bought.status_code == 201, bought.text
    return pid


def _tool_results(body: dict) -> list[dict]:
    return [block for block in body["messages"][-1]["content"] if block["type"] == "tool_result"]


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def test_how_is_my_portfolio_doing_vs_btc_answers_from_get_performance_with_grounded_figures(
    offline_settings, live_server
):
    server = await live_server(offline_settings())
    now = _now()
    await add_btc_step(server.runtime.db, now)
    async with server.client() as client:
        headers = await register(client)
        pid = await ledger_with_history(client, headers, now)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "How is my portfolio doing this month vs BTC?")
        rest = (await client.get(f"/api/v1/portfolios/{pid}/performance?range=1m", headers=headers)).json()

    (tool,) = stream.named("tool")
    assert tool.data["name"] == "get_performance" and tool.data["arguments"] == {"range": "1m"}
    assert not tool.data["is_error"]
    # 10,000 -> 9,995.50 after the fee -> 5,495.50 cash + 0.05 x 99,000 = 10,445.50: +4.455 %
    assert Decimal(rest["time_weighted_return_pct"]) == Decimal("4.455")
    assert Decimal(rest["benchmark_return_pct"]) == Decimal(10)
    assert "Your portfolio returned +4.46% over the past month (time-weighted)" in stream.text
    assert "Holding BTC/USDT instead returned +10.00%, so your portfolio is behind BTC." in stream.text
    assert "left out of these figures" in stream.text  # the month before the ledger has no BTC candles
    assert stream.last.data["grounding"]["unverified_claims"] == []


async def test_a_wrong_return_figure_about_the_portfolio_is_flagged(chat_settings, live_server, fake_anthropic):
    now = _now()
    fake_anthropic.queue(
        Reply(chunks=[""], tool_calls=[ToolUseScript("get_performance", {"range": "1w"})]),
        Reply(chunks=["Your portfolio returned +7.20% this week, while BTC/USDT returned +10.00%."]),
    )
    server = await live_server(chat_settings())
    await add_btc_step(server.runtime.db, now)
    async with server.client() as client:
        headers = await register(client)
        await ledger_with_history(client, headers, now)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "How did my portfolio do this week?")
    data = orjson.loads(_tool_results(fake_anthropic.requests[1].body)[0]["content"])
    assert data["time_weighted_return_pct"] == "4.455" and data["benchmark_return_pct"] == "10"
    assert len(data["series"]) <= 32 and data["series"][-1]["at"] == data["end"]
    flagged = [c["text"] for c in stream.last.data["grounding"]["unverified_claims"]]
    assert flagged == ["+7.20%"]


async def test_my_last_trades_calls_get_trades_and_lists_them_newest_first(offline_settings, live_server):
    server = await live_server(offline_settings())
    now = _now()
    async with server.client() as client:
        headers = await register(client)
        await ledger_with_history(client, headers, now)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "Show my last trades")
    (tool,) = stream.named("tool")
    assert tool.data["name"] == "get_trades" and tool.data["arguments"] == {"limit": 10}
    assert tool.data["summary"] == "2 transactions"
    lines = stream.text.splitlines()
    assert lines[0] == "Your last 2 transactions, newest first:"
    bought_at = (now - 46 * HOUR).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert lines[1] == f"- {bought_at}: buy 0.05 BTC at 90,000.00"
    assert lines[2].endswith(": deposit of 10,000.00 into your portfolio's cash")
    assert stream.last.data["grounding"]["unverified_claims"] == []


async def test_trades_and_performance_reach_only_the_asking_users_ledger(chat_settings, live_server, fake_anthropic):
    now = _now()
    server = await live_server(chat_settings())
    await add_btc_step(server.runtime.db, now)
    async with server.client() as client:
        alice = await register(client)
        bob = await register(client)
        await ledger_with_history(client, alice, now)
        for headers in (alice, bob):
            fake_anthropic.queue(
                Reply(
                    chunks=[""],
                    tool_calls=[
                        ToolUseScript("get_trades", {"symbol": "BTC"}),
                        ToolUseScript("get_performance", {"range": "1w"}),
                        ToolUseScript("get_portfolio", {}),
                    ],
                ),
                Reply(chunks=["Here it is."]),
            )
            chat_id = await new_chat(client, headers)
            await ask(client, headers, chat_id, "my trades and performance?")
    alices, bobs = (
        [orjson.loads(r["content"]) for r in _tool_results(req.body)] for req in fake_anthropic.requests[1::2]
    )
    trades, performance, portfolio = alices
    assert [(t["kind"], t["symbol"], t["quantity"]) for t in trades["transactions"]] == [("buy", "BTC/USDT", "0.05")]
    assert performance["time_weighted_return_pct"] == "4.455"
    assert portfolio["cash"] == "5495.5" and portfolio["realized_pnl"] == "0"
    # equity: 5,495.50 cash + 0.05 x 97,250.50 (the live price) = 10,358.025; return on 10,000 deposited
    assert portfolio["equity"] == "10358.025" and portfolio["total_return"] == "358.025"
    bob_trades, bob_performance, bob_portfolio = bobs
    assert bob_trades["transactions"] == [] and bob_trades["symbol"] == "BTC/USDT"
    assert bob_performance == {"range": "1w", "note": "the user has no portfolio yet"}
    assert bob_portfolio == {"positions": [], "note": "the user has no portfolio yet"}


async def test_bad_portfolio_tool_arguments_become_error_results(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(
        Reply(
            chunks=[""],
            tool_calls=[
                ToolUseScript("get_trades", {"limit": 500}),
                ToolUseScript("get_trades", {"symbol": "not a symbol!"}),
                ToolUseScript("get_performance", {"range": "5y"}),
                ToolUseScript("get_trades", {"user_id": "00000000-0000-0000-0000-000000000001"}),
            ],
        ),
        Reply(chunks=["Sorry."]),
    )
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "trades?")
    results = _tool_results(fake_anthropic.requests[1].body)
    assert all(r["is_error"] for r in results) and len(results) == 4
    errors = [orjson.loads(r["content"])["error"] for r in results]
    assert errors[0].startswith("Invalid arguments: limit")
    assert "is not a symbol" in errors[1]
    assert errors[2].startswith("Invalid arguments: range")
    assert errors[3].startswith("Invalid arguments: user_id")
    assert stream.last.data["status"] == "complete"


async def test_the_offline_portfolio_answer_states_the_ledgers_cash_equity_and_return_grounded(
    offline_settings, live_server
):
    server = await live_server(offline_settings())
    async with server.client() as client:
        headers = await register(client)
        await ledger_with_history(client, headers, _now())
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "What's my portfolio worth?")
    assert stream.named("tool") == []  # the context has the summary
    # 5,495.50 cash + 0.05 x 97,250.50 = 10,358.025 equity on 10,000 deposited
    assert (
        "With 5,495.50 in cash, the portfolio's equity is 10,358.03; realized P&L 0.00, total return +358.03 (+3.58%)."
        in stream.text
    )
    assert stream.last.data["grounding"]["unverified_claims"] == []


async def test_a_korean_performance_question_gets_a_korean_grounded_answer(offline_settings, live_server):
    server = await live_server(offline_settings())
    now = _now()
    await add_btc_step(server.runtime.db, now)
    async with server.client() as client:
        headers = await register(client)
        await ledger_with_history(client, headers, now)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "내 포트폴리오 이번 주 수익률은 BTC 대비 어때?")
    (tool,) = stream.named("tool")
    assert tool.data["arguments"] == {"range": "1w"}
    assert "지난 일주일 동안 포트폴리오의 시간가중 수익률은 +4.46%이고, 최대 낙폭은" in stream.text
    assert "같은 기간 BTC/USDT 보유 수익률은 +10.00%로, 포트폴리오가 뒤처졌습니다." in stream.text
    assert stream.last.data["grounding"]["unverified_claims"] == []


async def test_the_tools_read_a_named_portfolio_of_the_asking_user_only(chat_settings, live_server, fake_anthropic):
    """get_portfolio / get_trades / get_performance take an optional `portfolio` (id or name);
    another user's portfolio, by id or by the same name, is "not found"."""
    server = await live_server(chat_settings())
    async with server.client() as client:
        alice = await register(client)
        bob = await register(client)
        created = await client.post("/api/v1/portfolios", json={"name": "Swing", "starting_cash": "500"}, headers=alice)
        assert created.status_code == 201, created.text
        swing = created.json()["id"]
        bought = await book(
            client, alice, swing, kind="buy", symbol="ETH/USDT", quantity="0.1", price="3000", fee="0.3"
        )
        assert bought.status_code == 201, bought.text
        fake_anthropic.queue(
            Reply(
                chunks=[""],
                tool_calls=[
                    ToolUseScript("get_portfolio", {"portfolio": "Swing"}),
                    ToolUseScript("get_trades", {"portfolio": swing}),
                    ToolUseScript("get_performance", {"portfolio": "swing", "range": "1d"}),
                    ToolUseScript("get_portfolio", {}),
                ],
            ),
            Reply(chunks=["Here."]),
        )
        await ask(client, alice, await new_chat(client, alice), "how is my Swing portfolio?")
        fake_anthropic.queue(
            Reply(
                chunks=[""],
                tool_calls=[
                    ToolUseScript("get_portfolio", {"portfolio": swing}),
                    ToolUseScript("get_trades", {"portfolio": "Swing"}),
                    ToolUseScript("get_performance", {"portfolio": swing, "range": "1d"}),
                ],
            ),
            Reply(chunks=["Sorry."]),
        )
        await ask(client, bob, await new_chat(client, bob), "and alice's Swing portfolio?")
    first_request = fake_anthropic.requests[0].body
    schemas = {t["name"]: t["input_schema"] for t in first_request["tools"]}
    for name in ("get_portfolio", "get_trades", "get_performance"):
        field = schemas[name]["properties"]["portfolio"]
        assert {"type": "string", "minLength": 1, "maxLength": 100} in [
            {k: v for k, v in option.items() if k in ("type", "minLength", "maxLength")} for option in field["anyOf"]
        ]
        assert schemas[name]["additionalProperties"] is False
    alices = _tool_results(fake_anthropic.requests[1].body)
    assert not any(r["is_error"] for r in alices)
    named, trades, performance, default = (orjson.loads(r["content"]) for r in alices)
    assert named["portfolio"] == "Swing" and named["cash"] == "199.7"  # 500 - 0.1 x 3000 - 0.3
    assert [p["symbol"] for p in named["positions"]] == ["ETH/USDT"]
    assert trades["portfolio"] == "Swing"
    assert [(t["kind"], t["quantity"]) for t in trades["transactions"]] == [("buy", "0.1"), ("deposit", "500")]
    assert performance["portfolio"] == "Swing" and performance["range"] == "1d"
    assert default["portfolio"] == "Default" and default["positions"] == [] and default["cash"] == "10000"
    bobs = _tool_results(fake_anthropic.requests[3].body)
    assert len(bobs) == 3 and all(r["is_error"] for r in bobs)
    for result in bobs:
        assert "not found" in orjson.loads(result["content"])["error"]
