"""CSV import (Binance trade history, our export) and export: all rows or none."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sage.portfolio.csvio import CsvError, format_transactions, parse_transactions
from tests.chat.support import FakeMarket
from tests.portfolio.support import default_portfolio, summary

D = Decimal
NOW = datetime(2026, 12, 1, tzinfo=UTC)
HEADER = "Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n"


def parse(text: str):
    return parse_transactions(text, base_currency="USDT", now=NOW)


def test_binance_rows_become_trades_with_fees_in_the_base_currency():
    rows = parse(
        HEADER
        + "2024-03-01 10:15:30,BTCUSDT,BUY,62000.5,0.01000000BTC,620.005USDT,0.00001000BTC\n"
        + '2024-03-02 11:00:00,BTCUSDT,SELL,"64,000",0.005BTC,320USDT,0.32USDT\n'
    )
    buy, sell = rows
    assert (buy.kind, buy.symbol, buy.quantity, buy.price) == ("buy", "BTC/USDT", D("0.01"), D("62000.5"))
    assert buy.fee == D("0.00001") * D("62000.5")  # charged in BTC: converted at the trade's price
    assert buy.executed_at == datetime(2024, 3, 1, 10, 15, 30, tzinfo=UTC)
    assert (sell.kind, sell.price, sell.fee) == ("sell", D(64000), D("0.32"))
    assert buy.key != sell.key


def test_identical_rows_get_distinct_keys_and_the_same_file_the_same_keys():
    text = HEADER + "2024-03-01 10:15:30,ETHUSDT,BUY,3000,1ETH,3000USDT,3USDT\n" * 2
    first, second = parse(text)
    assert first.key != second.key
    assert [r.key for r in parse(text)] == [first.key, second.key]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("2024-03-01 10:15:30,BTCUSDT,HOLD,1,1BTC,1USDT,0USDT", "side 'HOLD' is not BUY or SELL"),
        ("2024-03-01 10:15:30,BTCUSDT,BUY,abc,1BTC,1USDT,0USDT", "Price 'abc' is not a number"),
        ("2024-03-01 10:15:30,BTCUSDT,BUY,-1,1BTC,1USDT,0USDT", "Price must be positive"),
        ("2024-03-01 10:15:30,BTCUSDT,BUY,1,1ETH,1USDT,0USDT", "Executed is in ETH, not BTC"),
        ("2024-03-01 10:15:30,BTCUSDT,BUY,1,1BTC,1USDT,0.1BNB", "the fee is in BNB"),
        ("2024-03-01 10:15:30,ETHBTC,BUY,1,1ETH,1BTC,0BTC", "not quoted in the portfolio's base currency USDT"),
        ("yesterday,BTCUSDT,BUY,1,1BTC,1USDT,0USDT", "date 'yesterday'"),
        ("2030-01-01 00:00:00,BTCUSDT,BUY,1,1BTC,1USDT,0USDT", "is in the future"),
        ("2024-03-01 10:15:30,BTCUSDT,BUY,1,0.0000000000000000001BTC,1USDT,0USDT", "more than 18 decimal places"),
        ("2024-03-01 10:15:30,BTCUSDT,BUY,1", "4 columns, expected 7"),
    ],
)
def test_a_bad_row_is_named_with_its_row_number_and_reason(line, reason):
    good = "2024-03-01 10:15:30,BTCUSDT,BUY,1,1BTC,1USDT,0USDT\n"
    with pytest.raises(CsvError) as caught:
        parse(HEADER + good + line + "\n")
    [(row, message)] = caught.value.problems
    assert row == 3 and reason in message


def test_an_unknown_header_or_an_empty_file_is_refused():
    with pytest.raises(CsvError, match="unknown header"):
        parse("when,what\n1,2\n")
    with pytest.raises(CsvError, match="empty"):
        parse("")
    with pytest.raises(CsvError, match="no transactions"):
        parse(HEADER)


@pytest.fixture
def market_reader() -> FakeMarket:
    return FakeMarket()


async def _import(client, headers, pid, text: str):
    return await client.post(
        f"/api/v1/portfolios/{pid}/import", content=text.encode(), headers={**headers, "Content-Type": "text/csv"}
    )


async def _backdated_portfolio(client, headers) -> str:
    """The default portfolio with its starting cash back-dated, so past trades have cash at their time."""
    pid = await default_portfolio(client, headers)
    deposit = (await client.get(f"/api/v1/portfolios/{pid}/transactions", headers=headers)).json()[0]
    patched = await client.patch(
        f"/api/v1/portfolios/{pid}/transactions/{deposit['id']}",
        json={"executed_at": "2024-01-01T00:00:00Z"},
        headers=headers,
    )
    assert patched.status_code == 200
    return pid


async def test_an_import_books_every_row_and_a_second_import_of_the_same_file_books_nothing(app_client, auth_headers):
    pid = await _backdated_portfolio(app_client, auth_headers)
    text = (
        HEADER
        + "2024-03-01 10:15:30,ETHUSDT,BUY,3000,2ETH,6000USDT,6USDT\n"
        + "2024-03-05 09:00:00,ETHUSDT,SELL,3500,1ETH,3500USDT,3.5USDT\n"
    )
    first = await _import(app_client, auth_headers, pid, text)
    assert first.status_code == 200 and first.json() == {"booked": 2, "skipped": 0}
    again = await _import(app_client, auth_headers, pid, text)
    assert again.json() == {"booked": 0, "skipped": 2}
    s = await summary(app_client, auth_headers, pid)
    assert D(s["realized_pnl"]) == D(500) - D("3.5")
    assert D(s["cash"]) == D(10000) - D(6006) + D("3496.5")


async def test_a_file_with_one_bad_row_writes_nothing(app_client, auth_headers):
    pid = await default_portfolio(app_client, auth_headers)
    text = (
        HEADER
        + f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S},SOLUSDT,BUY,100,1SOL,100USDT,0USDT\n"
        + "x,SOLUSDT,BUY,1,1SOL,1USDT,0USDT\n"
    )
    response = await _import(app_client, auth_headers, pid, text)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "import_rejected" and error["message"].startswith(
        "Import rejected, nothing was written: row 3"
    )
    assert error["details"] == [{"row": 3, "message": "date 'x' is not YYYY-MM-DD HH:MM:SS"}]
    assert len((await app_client.get(f"/api/v1/portfolios/{pid}/transactions", headers=auth_headers)).json()) == 1


async def test_a_row_the_ledger_cannot_hold_rejects_the_file_naming_the_row(app_client, auth_headers):
    pid = await _backdated_portfolio(app_client, auth_headers)
    now = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    text = HEADER + f"{now},SOLUSDT,BUY,100,1SOL,100USDT,0USDT\n" + f"{now},SOLUSDT,SELL,100,2SOL,200USDT,0USDT\n"
    response = await _import(app_client, auth_headers, pid, text)
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [{"row": 3, "message": "sells 2 SOL/USDT but only 1 is held then"}]
    unknown = await _import(app_client, auth_headers, pid, HEADER + f"{now},FOOUSDT,BUY,1,1FOO,1USDT,0USDT\n")
    assert unknown.status_code == 422 and "FOO/USDT" in unknown.json()["error"]["details"][0]["message"]
    assert len((await app_client.get(f"/api/v1/portfolios/{pid}/transactions", headers=auth_headers)).json()) == 1


async def test_an_import_must_be_csv(app_client, auth_headers):
    pid = await default_portfolio(app_client, auth_headers)
    response = await app_client.post(f"/api/v1/portfolios/{pid}/import", json={"rows": []}, headers=auth_headers)
    assert response.status_code == 415


async def test_the_export_reimports_into_another_portfolio_as_the_same_ledger(app_client, auth_headers):
    pid = await default_portfolio(app_client, auth_headers)
    base = f"/api/v1/portfolios/{pid}/transactions"
    await app_client.post(base, json={"kind": "buy", "symbol": "BTC/USDT", "quantity": "0.02"}, headers=auth_headers)
    await app_client.post(
        base,
        json={"kind": "sell", "symbol": "BTC/USDT", "quantity": "0.01", "price": "99000", "note": 'a "quoted", note'},
        headers=auth_headers,
    )
    export = await app_client.get(f"/api/v1/portfolios/{pid}/export", headers=auth_headers)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0] == "executed_at,kind,symbol,quantity,price,fee,note,id"
    copy = (
        await app_client.post("/api/v1/portfolios", json={"name": "Copy", "starting_cash": "0"}, headers=auth_headers)
    ).json()
    imported = await _import(app_client, auth_headers, copy["id"], export.text)
    assert imported.json() == {"booked": 3, "skipped": 0}, imported.text
    original, copied = await summary(app_client, auth_headers, pid), await summary(app_client, auth_headers, copy["id"])
    for key in ("cash", "realized_pnl", "fees_paid", "net_deposits"):
        assert D(original[key]) == D(copied[key]), key


def test_an_exported_note_cannot_run_as_a_spreadsheet_formula():
    from types import SimpleNamespace

    row = SimpleNamespace(
        id="x",
        executed_at=NOW,
        kind="deposit",
        symbol=None,
        quantity=D(1),
        price=None,
        fee=D(0),
        note='=HYPERLINK("http://evil.example","click")',
    )
    line = format_transactions([row]).splitlines()[1]
    assert ",\"'=HYPERLINK(" in line
