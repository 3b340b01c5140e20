"""Portfolios and their ledgers over the API: booking, rules, history edits, isolation."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

import pytest

from tests.chat.support import FakeMarket
from tests.portfolio.support import book, default_portfolio, summary
from tests.support.api import register_and_login

D = Decimal


@pytest.fixture
def market_reader() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
def market(app_client, market_reader: FakeMarket) -> FakeMarket:
    return market_reader


async def test_a_default_portfolio_with_the_starting_cash_is_created_on_first_use(app_client, auth_headers, market):
    listed = (await app_client.get("/api/v1/portfolios", headers=auth_headers)).json()
    assert [(p["name"], p["is_default"], D(p["starting_cash"]), p["base_currency"]) for p in listed] == [
        ("Default", True, D(10000), "USDT")
    ]
    again = (await app_client.get("/api/v1/portfolios", headers=auth_headers)).json()
    assert [p["id"] for p in again] == [listed[0]["id"]]
    assert D((await summary(app_client, auth_headers, listed[0]["id"]))["cash"]) == D(10000)


async def test_portfolios_are_created_renamed_made_default_and_deleted(app_client, auth_headers, market):
    first = await default_portfolio(app_client, auth_headers)
    created = await app_client.post(
        "/api/v1/portfolios", json={"name": "Momentum", "starting_cash": "2500"}, headers=auth_headers
    )
    assert created.status_code == 201 and D(created.json()["starting_cash"]) == D(2500)
    pid = created.json()["id"]
    duplicate = await app_client.post("/api/v1/portfolios", json={"name": "Momentum"}, headers=auth_headers)
    assert duplicate.status_code == 409
    patched = await app_client.patch(
        f"/api/v1/portfolios/{pid}", json={"name": "Swing", "is_default": True}, headers=auth_headers
    )
    assert patched.json()["name"] == "Swing" and patched.json()["is_default"] is True
    assert (await app_client.get(f"/api/v1/portfolios/{first}", headers=auth_headers)).json()["is_default"] is False
    assert (await app_client.delete(f"/api/v1/portfolios/{pid}", headers=auth_headers)).status_code == 204
    assert (await app_client.get(f"/api/v1/portfolios/{pid}", headers=auth_headers)).status_code == 404
    # deleting the default promoted the other one
    assert (await app_client.get(f"/api/v1/portfolios/{first}", headers=auth_headers)).json()["is_default"] is True


async def test_a_market_buy_fills_at_the_consolidated_price_with_the_default_fee(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    response = await book(app_client, auth_headers, pid, kind="buy", symbol="btc-usdt", quantity="0.1")
    assert response.status_code == 201, response.text
    tx = response.json()
    assert (tx["symbol"], D(tx["price"]), D(tx["fee"])) == ("BTC/USDT", D("97250.50"), D("9.72505"))
    s = await summary(app_client, auth_headers, pid)
    assert D(s["cash"]) == D(10000) - D("9725.05") - D("9.72505")
    [btc] = s["positions"]
    assert D(btc["quantity"]) == D("0.1") and D(btc["average_cost"]) == D("97250.5")
    assert D(s["fees_paid"]) == D("9.72505")
    assert D(s["total_value"]) == D(10000) - D("9.72505")  # the fee is the only loss at an unchanged price
    assert D(s["total_return"]) == D("-9.72505") and s["priced_all"] is True


async def test_a_sell_realizes_pnl_against_the_average_cost(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    await book(app_client, auth_headers, pid, kind="buy", symbol="ETH/USDT", quantity="1", price="3000", fee="0")
    await book(app_client, auth_headers, pid, kind="buy", symbol="ETH/USDT", quantity="1", price="3400", fee="0")
    sold = await book(app_client, auth_headers, pid, kind="sell", symbol="ETH/USDT", quantity="0.5", fee="1")
    assert sold.status_code == 201, sold.text
    s = await summary(app_client, auth_headers, pid)
    # market price 3456.78, average 3200: (3456.78 - 3200) x 0.5 - 1
    assert D(s["realized_pnl"]) == D("127.39")
    assert D(s["positions"][0]["average_cost"]) == D(3200)
    assert D(s["unrealized_pnl"]) == (D("3456.78") - D(3200)) * D("1.5")


async def test_selling_more_than_held_or_spending_more_than_the_cash_is_422(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    oversell = await book(app_client, auth_headers, pid, kind="sell", symbol="BTC/USDT", quantity="0.01")
    assert oversell.status_code == 422 and oversell.json()["error"]["code"] == "invalid_transaction"
    assert "only 0 is held" in oversell.json()["error"]["message"]
    overspend = await book(app_client, auth_headers, pid, kind="buy", symbol="BTC/USDT", quantity="1")
    assert overspend.status_code == 422 and "but the cash is 10000" in overspend.json()["error"]["message"]
    withdraw = await book(app_client, auth_headers, pid, kind="withdraw", quantity="10000.01")
    assert withdraw.status_code == 422
    assert (await app_client.get(f"/api/v1/portfolios/{pid}/transactions", headers=auth_headers)).json()[0][
        "kind"
    ] == "deposit"  # nothing but the starting cash was booked


async def test_an_unknown_symbol_is_422_naming_it(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    response = await book(app_client, auth_headers, pid, kind="buy", symbol="FOO/BAR", quantity="1", price="1")
    assert response.status_code == 422 and "FOO/BAR" in response.json()["error"]["message"]


@pytest.mark.parametrize("flag", ["stale", "diverged"])
async def test_a_market_order_is_refused_on_a_stale_or_diverged_price(app_client, auth_headers, market, flag):
    market.quotes["BTC/USDT"] = dataclasses.replace(market.quotes["BTC/USDT"], **{flag: True})
    pid = await default_portfolio(app_client, auth_headers)
    response = await book(app_client, auth_headers, pid, kind="buy", symbol="BTC/USDT", quantity="0.01")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "price_unavailable" and "BTC/USDT" in response.json()["error"]["message"]
    # a trade recorded at its own price does not need the market's (cash deposited before it)
    await book(app_client, auth_headers, pid, kind="deposit", quantity="1000", executed_at="2026-01-01T00:00:00Z")
    recorded = await book(
        app_client,
        auth_headers,
        pid,
        kind="buy",
        symbol="BTC/USDT",
        quantity="0.01",
        price="90000",
        executed_at="2026-01-02T03:04:05Z",
    )
    assert recorded.status_code == 201


async def test_bad_amounts_are_422_naming_the_field(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    for body in (
        {"kind": "buy", "symbol": "BTC", "quantity": "0"},
        {"kind": "buy", "symbol": "BTC", "quantity": "-1"},
        {"kind": "buy", "symbol": "BTC", "quantity": "0.0000000000000000001"},
        {"kind": "buy", "symbol": "BTC", "quantity": "1", "price": "0"},
        {"kind": "buy", "symbol": "BTC", "quantity": "1", "price": "1", "executed_at": "2999-01-01T00:00:00Z"},
        {"kind": "short", "symbol": "BTC", "quantity": "1"},
        {"kind": "deposit", "quantity": "1", "symbol": "BTC"},
        {"kind": "buy", "quantity": "1"},
        {"kind": "buy", "symbol": "BTC", "quantity": "1", "leverage": 5},
        {"kind": "buy", "symbol": "BTC", "quantity": "99999999999999999999", "price": "99999999999999999999"},
        {"kind": "buy", "symbol": "BTC", "quantity": "1", "price": "1", "executed_at": "2026-01-01T00:00:00"},
    ):
        response = await book(app_client, auth_headers, pid, **body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["details"], body


async def test_a_past_trade_is_checked_against_the_history_after_it(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    await book(app_client, auth_headers, pid, kind="withdraw", quantity="9000")
    # the starting deposit was booked now; a buy dated last year had no cash yet
    early = await book(
        app_client,
        auth_headers,
        pid,
        kind="buy",
        symbol="SOL/USDT",
        quantity="1",
        price="100",
        executed_at="2025-01-01T00:00:00Z",
    )
    assert early.status_code == 422


async def test_deleting_or_correcting_a_transaction_recomputes_and_refuses_invalid_history(
    app_client, auth_headers, market
):
    pid = await default_portfolio(app_client, auth_headers)
    buy = (
        await book(app_client, auth_headers, pid, kind="buy", symbol="SOL/USDT", quantity="10", price="100", fee="0")
    ).json()
    await book(app_client, auth_headers, pid, kind="sell", symbol="SOL/USDT", quantity="4", price="150", fee="0")
    base = f"/api/v1/portfolios/{pid}/transactions/{buy['id']}"
    refused = await app_client.delete(base, headers=auth_headers)
    assert refused.status_code == 422 and "sells 4 SOL/USDT but only 0 is held" in refused.json()["error"]["message"]
    too_small = await app_client.patch(base, json={"quantity": "3"}, headers=auth_headers)
    assert too_small.status_code == 422
    corrected = await app_client.patch(base, json={"price": "120"}, headers=auth_headers)
    assert corrected.status_code == 200 and D(corrected.json()["price"]) == D(120)
    s = await summary(app_client, auth_headers, pid)
    assert D(s["realized_pnl"]) == D(4) * (D(150) - D(120))
    assert D(s["cash"]) == D(10000) - D(1200) + D(600)
    sell_id = (await app_client.get(f"/api/v1/portfolios/{pid}/transactions?symbol=SOL", headers=auth_headers)).json()[
        0
    ]["id"]
    assert (
        await app_client.delete(f"/api/v1/portfolios/{pid}/transactions/{sell_id}", headers=auth_headers)
    ).status_code == 204
    assert (await app_client.delete(base, headers=auth_headers)).status_code == 204
    s = await summary(app_client, auth_headers, pid)
    assert D(s["cash"]) == D(10000) and s["positions"] == [] and D(s["realized_pnl"]) == 0


async def test_the_same_idempotency_key_sent_concurrently_books_once(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    headers = {**auth_headers, "Idempotency-Key": "order-7f3a"}
    responses = await asyncio.gather(
        *(
            app_client.post(
                f"/api/v1/portfolios/{pid}/transactions",
                json={"kind": "buy", "symbol": "BTC/USDT", "quantity": "0.01"},
                headers=headers,
            )
            for _ in range(8)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in responses if r.status_code == 200)
    txs = (await app_client.get(f"/api/v1/portfolios/{pid}/transactions", headers=auth_headers)).json()
    assert [t["kind"] for t in txs].count("buy") == 1
    reused = await app_client.post(
        f"/api/v1/portfolios/{pid}/transactions",
        json={"kind": "sell", "symbol": "BTC/USDT", "quantity": "0.01"},
        headers=headers,
    )
    assert reused.status_code == 409


async def test_concurrent_market_buys_never_overdraw_the_cash(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    # each buy costs 972.505 + 0.972505 fee: the 10,000 starting cash covers exactly 10
    responses = await asyncio.gather(
        *(book(app_client, auth_headers, pid, kind="buy", symbol="BTC/USDT", quantity="0.01") for _ in range(25))
    )
    assert sorted(r.status_code for r in responses) == [201] * 10 + [422] * 15
    s = await summary(app_client, auth_headers, pid)
    assert D(s["cash"]) >= 0 and D(s["positions"][0]["quantity"]) == D("0.1")


async def test_another_users_portfolio_is_a_404(app_client, auth_headers, market):
    pid = await default_portfolio(app_client, auth_headers)
    tx = (await book(app_client, auth_headers, pid, kind="deposit", quantity="5")).json()
    other = {"Authorization": f"Bearer {(await register_and_login(app_client))['access_token']}"}
    for method, path in (
        ("GET", f"/api/v1/portfolios/{pid}"),
        ("PATCH", f"/api/v1/portfolios/{pid}"),
        ("DELETE", f"/api/v1/portfolios/{pid}"),
        ("GET", f"/api/v1/portfolios/{pid}/transactions"),
        ("POST", f"/api/v1/portfolios/{pid}/transactions"),
        ("DELETE", f"/api/v1/portfolios/{pid}/transactions/{tx['id']}"),
        ("GET", f"/api/v1/portfolios/{pid}/summary"),
        ("GET", f"/api/v1/portfolios/{pid}/performance"),
        ("GET", f"/api/v1/portfolios/{pid}/export"),
    ):
        body = (
            {"kind": "deposit", "quantity": "1"} if method == "POST" else {"name": "x"} if method == "PATCH" else None
        )
        response = await app_client.request(method, path, json=body, headers=other)
        assert response.status_code == 404, (method, path, response.text)
    imported = await app_client.post(
        f"/api/v1/portfolios/{pid}/import", content=b"x", headers={**other, "Content-Type": "text/csv"}
    )
    assert imported.status_code == 404
    mine = await app_client.get("/api/v1/portfolios", headers=other)
    assert pid not in {p["id"] for p in mine.json()}
    assert len((await app_client.get(f"/api/v1/portfolios/{pid}/transactions", headers=auth_headers)).json()) == 2


async def test_the_portfolios_need_a_login(app_client):
    assert (await app_client.get("/api/v1/portfolios")).status_code == 401


async def test_the_old_positions_routes_are_deprecated_in_openapi(app_client):
    spec = (await app_client.get("/openapi.json")).json()
    assert spec["paths"]["/api/v1/portfolio/positions"]["get"]["deprecated"] is True
    assert "deprecated" not in spec["paths"]["/api/v1/portfolios"]["get"]


async def test_a_correction_keeps_its_booking_order_among_transactions_of_the_same_time(
    app_client, auth_headers, market
):
    pid = await default_portfolio(app_client, auth_headers)
    ok = await book(app_client, auth_headers, pid, kind="deposit", quantity="1000", executed_at="2026-01-01T00:00:00Z")
    assert ok.status_code == 201
    recorded = {"symbol": "SOL/USDT", "price": "100", "fee": "0"}
    await book(app_client, auth_headers, pid, kind="buy", quantity="1", executed_at="2026-01-02T00:00:00Z", **recorded)
    sell = await book(
        app_client, auth_headers, pid, kind="sell", quantity="1", executed_at="2026-01-04T00:00:00Z", **recorded
    )
    late_buy = await book(
        app_client, auth_headers, pid, kind="buy", quantity="1", executed_at="2026-01-03T00:00:00Z", **recorded
    )
    assert sell.status_code == 201 and late_buy.status_code == 201
    # selling 2 at the late buy's time: the sell was booked first, so at that time it comes
    # first (as the database reads the history back), when only 1 is held: refused
    moved = await app_client.patch(
        f"/api/v1/portfolios/{pid}/transactions/{sell.json()['id']}",
        json={"executed_at": "2026-01-03T00:00:00Z", "quantity": "2"},
        headers=auth_headers,
    )
    assert moved.status_code == 422 and "only 1 is held" in moved.json()["error"]["message"]
