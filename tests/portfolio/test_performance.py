"""Performance from the ledger and stored candles: series, time-weighted return, drawdown, benchmark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sage.portfolio.ledger import Entry
from sage.portfolio.performance import Point, grid, time_weighted, window
from sage.portfolio.state import derive
from tests.chat.support import FakeMarket
from tests.portfolio.support import add_closes, default_portfolio, series_of, values_at

D = Decimal
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def deposit(amount: str, at: datetime) -> Entry:
    return Entry("deposit", None, D(amount), None, D(0), at)


def buy(symbol: str, quantity: str, price: str, at: datetime) -> Entry:
    return Entry("buy", symbol, D(quantity), D(price), D(0), at)


def test_ranges_are_hourly_up_to_30_days_and_daily_beyond():
    assert window("1m", NOW, None) == (NOW - timedelta(days=30), H)
    assert window("3m", NOW, None) == (NOW - timedelta(days=90), timedelta(days=1))
    assert window("all", NOW, NOW - timedelta(days=3)) == (NOW - timedelta(days=3), H)
    times = grid(NOW - timedelta(minutes=150), NOW, H)
    assert times == [NOW - timedelta(minutes=150), NOW - 2 * H, NOW - H, NOW]


def test_deposits_and_withdrawals_are_not_performance():
    t0, t1, t2 = NOW - 2 * H, NOW - H, NOW
    entries = [
        deposit("1000", t0 - H),
        buy("ETH/USDT", "1", "1000", t0 - H),
        deposit("5000", t1 - timedelta(minutes=5)),
    ]
    prices = {("ETH/USDT", t0): D(1000), ("ETH/USDT", t1): D(1100), ("ETH/USDT", t2): D(990)}
    points, gaps = values_at(derive(entries).timeline, [t0, t1, t2], prices)
    assert [p.value for p in points] == [D(1000), D(6100), D(5990)]
    twr, drawdown = time_weighted(points)
    # +10 % then (5990 / 6100 - 1): the 5,000 deposit is not a gain
    assert abs(twr - (D("1.1") * (D(5990) / D(6100)) - 1) * 100) < D("1e-20")
    assert abs(drawdown - (1 - D(5990) / D(6100)) * 100) < D("1e-20")
    assert gaps == []


def test_a_held_symbol_without_a_candle_makes_the_point_unknown_and_is_reported():
    t0, t1, t2 = NOW - 2 * H, NOW - H, NOW
    entries = [deposit("100", t0 - H), buy("SOL/USDT", "1", "100", t0 - H)]
    points, gaps = values_at(
        derive(entries).timeline, [t0, t1, t2], {("SOL/USDT", t0): D(100), ("SOL/USDT", t2): D(120)}
    )
    assert [p.value for p in points] == [D(100), None, D(120)]
    assert [(g.symbol, g.start, g.end) for g in gaps] == [("SOL/USDT", t1, t1)]
    twr, _ = time_weighted(points)
    assert twr is None  # no step has both ends valued: nothing is invented across the gap


def test_no_valued_step_means_no_return():
    assert time_weighted([Point(NOW, None, D(0), None)]) == (None, None)


async def test_the_series_follows_the_candles_and_compares_with_holding_btc(db):
    start = NOW - timedelta(days=1)
    times = grid(start, NOW, H)
    await add_closes(db, "BTC/USDT", {t: D(50000) + i * 100 for i, t in enumerate(times)})
    await add_closes(db, "BTC/USDT", {t: D(50000) + i * 100 + 50 for i, t in enumerate(times)}, exchange="gateio")
    await add_closes(db, "ETH/USDT", {t: D(2000) + (i % 3) * 10 for i, t in enumerate(times)}, exchange="gateio")
    # a trade recorded in the past (before the range) moves the whole curve
    entries = [deposit("10000", start - H), buy("ETH/USDT", "2", "2000", start - H)]

    result = await series_of(db, derive(entries).timeline, "1d", NOW, start - H)

    assert result.resolution == "1h" and len(result.points) == 25 and result.complete
    first, last = result.points[0], result.points[-1]
    assert first.value == D(6000) + 2 * D(2000) and last.value == D(6000) + 2 * (D(2000) + (24 % 3) * 10)
    # Binance's close where it has one (50,000 -> 52,400); ETH only on Gate.io is priced from there
    assert result.benchmark_return_pct == (D(52400) / D(50000) - 1) * 100
    assert first.benchmark_value == first.value
    assert result.max_drawdown_pct is not None and result.max_drawdown_pct > 0
    assert result.missing == ()


async def test_missing_candles_are_said_not_invented(db):
    entries = [deposit("100", NOW - 3 * H), buy("SOL/USDT", "1", "100", NOW - 3 * H)]
    result = await series_of(db, derive(entries).timeline, "1d", NOW, NOW - 3 * H)
    assert not result.complete
    assert all(p.value is None for p in result.points if p.at >= NOW - 3 * H)
    assert {g.symbol for g in result.missing} == {"SOL/USDT", "BTC/USDT (benchmark)"}
    assert result.benchmark_return_pct is None and result.time_weighted_return_pct is None


@pytest.fixture
def market_reader() -> FakeMarket:
    return FakeMarket()


async def test_the_performance_endpoint_reports_its_range_and_refuses_unknown_ones(app_client, auth_headers):
    pid = await default_portfolio(app_client, auth_headers)
    response = await app_client.get(f"/api/v1/portfolios/{pid}/performance?range=1w", headers=auth_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["range"] == "1w" and body["resolution"] == "1h" and body["benchmark_symbol"] == "BTC/USDT"
    assert body["complete"] is False  # no candles were stored in this test database
    assert any(g["symbol"] == "BTC/USDT (benchmark)" for g in body["missing"])
    bad = await app_client.get(f"/api/v1/portfolios/{pid}/performance?range=5y", headers=auth_headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_only_symbols_held_at_a_point_are_priced_there():
    t0, t1, t2 = NOW - 2 * H, NOW - H, NOW
    entries = [
        deposit("1000", t0 - H),
        buy("SOL/USDT", "2", "100", t0 - H),
        Entry("sell", "SOL/USDT", D(2), D(110), D(0), t0 + timedelta(minutes=5)),
        buy("ETH/USDT", "0.1", "2000", t1 + timedelta(minutes=5)),
    ]
    assert [list(s.held) for s in derive(entries).timeline.states_at([t0, t1, t2])] == [["SOL/USDT"], [], ["ETH/USDT"]]
    # so a position closed before a point leaves no gap there
    points, gaps = values_at(derive(entries).timeline, [t1], {})
    assert points[0].value == D(1020) and gaps == []


flows = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdraw", "buy"]), st.decimals(min_value=D(1), max_value=D(1000), places=2)
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(flows)
def test_with_flat_prices_and_no_fees_cash_flows_are_never_performance(plan):
    """Whatever is deposited, withdrawn or bought between points, an unchanged price means a
    time-weighted return of exactly 0 and no drawdown."""
    times = [NOW - 3 * H + i * H for i in range(4)]
    entries = [deposit("1000", times[0] - H)]
    cash = D(1000)
    for i, (kind, amount) in enumerate(plan):
        at = times[0] + timedelta(minutes=1 + 14 * i)  # in order, spread over the three steps
        if kind == "deposit":
            entries.append(deposit(str(amount), at))
            cash += amount
        elif kind == "withdraw" and amount <= cash:
            entries.append(Entry("withdraw", None, amount, None, D(0), at))
            cash -= amount
        elif kind == "buy" and amount <= cash:
            entries.append(buy("ETH/USDT", str(amount / 100), "100", at))
            cash -= amount
    points, _ = values_at(derive(entries).timeline, times, {("ETH/USDT", t): D(100) for t in times})
    assert time_weighted(points) == (D(0), D(0))
