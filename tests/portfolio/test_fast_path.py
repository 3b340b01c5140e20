"""The cached, incremental paths give exactly what the straightforward computation gives.

Straightforward: replay the whole ledger up to each point (`ledger.replay`) and probe every
close; fast: the derived state per ledger version (sage.portfolio.state), the timeline's
checkpoints, appended trades applied to the cached final state, persisted checkpoints and
points (sage.portfolio.checkpoints, sage.portfolio.points).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from sage.portfolio import performance as performance_module
from sage.portfolio import service as service_module
from sage.portfolio import state as state_module
from sage.portfolio.book import InvalidTransaction, TradeRequest, load_state
from sage.portfolio.ledger import Entry, replay
from sage.portfolio.performance import Gap, Point, candle_closes, grid
from sage.portfolio.service import PortfolioService
from sage.portfolio.state import StateCache, derive
from sage.store.db import Database
from tests.portfolio.support import (
    add_closes,
    cold_performance,
    ledger_version,
    portfolio_service,
    valid_history,
    values_at,
)

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def tiny_checkpoints() -> AbstractContextManager[object]:
    """Checkpoints every 3 transactions, so short generated histories cross many of them."""
    return mock.patch.object(state_module, "CHECKPOINT_EVERY", 3)


# -- pure: the timeline against replaying up to each point ------------------------------------------
step = st.tuples(
    st.sampled_from(["buy", "sell", "deposit", "withdraw"]),
    st.sampled_from(SYMBOLS),
    st.decimals(min_value=D("0.001"), max_value=D(50), places=3),
    st.decimals(min_value=D(1), max_value=D(3000), places=2),
    st.decimals(min_value=D(0), max_value=D(2), places=2),
    st.integers(min_value=0, max_value=3),  # hours after the previous transaction
)


def straightforward(entries: list[Entry], times: list[datetime], prices: dict[tuple[str, datetime], Decimal]):
    """Replay everything executed by each time, value the holdings at the prices."""
    points, missing = [], []
    for t in times:
        ledger = replay(e for e in entries if e.executed_at <= t)
        value: Decimal | None = ledger.cash
        absent = []
        for symbol, held in ledger.holdings.items():
            price = prices.get((symbol, t))
            if price is None:
                value = None
                absent.append(symbol)
            elif value is not None:
                value += held.quantity * price
        points.append(Point(t, value, ledger.net_deposits, None))
        missing.append(absent)
    return points, missing


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(step, min_size=1, max_size=40),
    price_seed=st.integers(min_value=0, max_value=10**6),
    hole=st.sampled_from(SYMBOLS),
)
def test_the_timeline_values_every_point_as_replaying_up_to_it(plan, price_seed, hole):
    with tiny_checkpoints():
        check_timeline(valid_history(plan, T0), price_seed, hole)


def check_timeline(entries: list[Entry], price_seed: int, hole: str) -> None:
    times = grid(T0 - H / 2, entries[-1].executed_at + 2 * H, H)
    # prices for every symbol and time but one symbol's every third point (gaps)
    prices = {
        (s, t): D(100 + (price_seed + i * 7 + j * 13) % 900)
        for i, t in enumerate(times)
        for j, s in enumerate(SYMBOLS)
        if not (s == hole and i % 3 == 0)
    }
    state = derive(entries)
    points, gaps = values_at(state.timeline, times, prices)
    expected, missing = straightforward(entries, times, prices)
    assert points == expected  # Decimal equality: values, not just close ones
    assert [repr(p.value) for p in points] == [repr(p.value) for p in expected]  # printed alike too
    assert {(g.symbol, g.start, g.end) for g in gaps} == expected_gaps(times, missing)
    held = [list(s.held) for s in state.timeline.states_at(times)]
    assert held == [held_symbols(entries, t) for t in times]
    assert repr(state.ledger) == repr(replay(entries))


def held_symbols(entries: list[Entry], t: datetime) -> list[str]:
    return list(replay(e for e in entries if e.executed_at <= t).holdings)


def expected_gaps(times: list[datetime], missing: list[list[str]]) -> set[tuple[str, datetime, datetime]]:
    """Runs of consecutive points where a symbol was held without a price."""
    runs: set[tuple[str, datetime, datetime]] = set()
    for symbol in SYMBOLS:
        start = None
        for i, t in enumerate(times):
            if symbol in missing[i]:
                start = start or t
                end = t
            elif start is not None:
                runs.add((symbol, start, end))
                start = None
        if start is not None:
            runs.add((symbol, start, end))
    return runs


@settings(max_examples=40, deadline=None)
@given(plan=st.lists(step, min_size=2, max_size=40), split=st.integers(min_value=1, max_value=39))
def test_appending_to_a_derived_state_equals_deriving_the_longer_history(plan, split):
    entries = valid_history(plan, T0)
    cut = min(split, len(entries) - 1)
    with tiny_checkpoints():
        state = derive(entries[:cut])
        for entry in entries[cut:]:
            after = state.ledger_copy()
            after.apply(entry)
            state = state.appended(entry, after, state.version + 1)
        fresh = derive(entries)
    assert state.timeline == fresh.timeline
    assert repr(state.ledger) == repr(fresh.ledger)
    assert state.version == len(entries) - cut


def test_the_state_cache_keeps_the_newest_version_and_its_size():
    cache = StateCache(size=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put(a, derive([], 5))
    cache.put(a, derive([], 4))  # a slow reader of an older version does not win
    assert cache.get(a, 5) is not None and cache.get(a, 4) is None
    cache.put(b, derive([], 1))
    cache.put(c, derive([], 1))
    assert cache.get(a, 5) is None  # least recently used, dropped
    assert cache.get(b, 1) is not None and cache.get(c, 1) is not None


# -- against PostgreSQL ---------------------------------------------------------------------------
def service(db: Database, now: datetime | None = None) -> PortfolioService:
    return portfolio_service(db, now)


async def fresh_state(db: Database, portfolio_id: uuid.UUID):
    async with db.session() as session:
        return await load_state(session, portfolio_id)


async def test_every_kind_of_write_bumps_the_version_once(db, user_id):
    sage = service(db)
    portfolio = await sage.default(user_id)
    assert portfolio is not None
    v0 = await ledger_version(db, portfolio.id)
    booked = await sage.book(user_id, portfolio.id, TradeRequest(kind="buy", symbol="ETH/USDT", quantity=D(1)))
    assert await ledger_version(db, portfolio.id) == v0 + 1
    await sage.correct_transaction(user_id, portfolio.id, booked.transaction.id, {"note": "first"})
    assert await ledger_version(db, portfolio.id) == v0 + 2
    result = await sage.import_csv(
        user_id,
        portfolio.id,
        "executed_at,kind,symbol,quantity,price,fee,note,id\n"
        + "".join(f"2026-01-0{d}T00:00:00Z,deposit,,{d},,0,,\n" for d in range(1, 8)),
    )
    assert result.booked == 7 and await ledger_version(db, portfolio.id) == v0 + 3  # one statement, one bump
    await sage.delete_transaction(user_id, portfolio.id, booked.transaction.id)
    assert await ledger_version(db, portfolio.id) == v0 + 4
    async with db.session() as session:  # a write outside the service (a COPY, a psql session) counts too
        await session.execute(
            text(
                "INSERT INTO portfolio_transactions (id, portfolio_id, kind, quantity, fee, executed_at)"
                " VALUES (:id, :pid, 'deposit', 5, 0, now())"
            ),
            {"id": uuid.uuid4(), "pid": portfolio.id},
        )
        await session.commit()
    assert await ledger_version(db, portfolio.id) == v0 + 5
    summary = await sage.summary(user_id, portfolio.id)
    assert summary is not None and summary.cash == (await fresh_state(db, portfolio.id)).ledger.cash


async def test_reads_after_each_write_equal_a_cold_read(db, user_id):
    now = datetime.now(UTC)
    sage = service(db, now)
    portfolio = await sage.default(user_id)
    assert portfolio is not None

    async def same_as_cold() -> None:
        cold = service(db, now)  # an empty cache: reads the checkpoint and replays what follows
        assert await sage.summary(user_id, portfolio.id) == await cold.summary(user_id, portfolio.id)
        current = await ledger_version(db, portfolio.id)
        fresh = await fresh_state(db, portfolio.id)  # the whole history replayed
        tip = sage.states.tip(portfolio.id, current)
        assert tip is not None and repr(tip.ledger) == repr(fresh.ledger)
        cached = sage.states.get(portfolio.id, current)  # kept after a write that replayed
        if cached is not None:
            assert cached.entries == fresh.entries and cached.timeline == fresh.timeline
            assert repr(cached.ledger) == repr(fresh.ledger)
        warm = await sage.performance(user_id, portfolio.id, "1w")  # stored points, the cached timeline
        assert warm == await cold_performance(db, user_id, portfolio.id, "1w", now)

    await sage.summary(user_id, portfolio.id)
    await sage.performance(user_id, portfolio.id, "1w")  # its points stored
    # market orders and trades recorded now: applied to the cached final ledger (no replay)
    for kind, quantity in (("buy", "0.5"), ("buy", "0.25"), ("buy", "1.123456789012345678"), ("sell", "0.75")):
        with (
            mock.patch.object(service_module, "load_entries") as history,
            mock.patch.object(service_module.checkpoints, "read_ledger") as ledger,
        ):
            await sage.book(user_id, portfolio.id, TradeRequest(kind=kind, symbol="ETH/USDT", quantity=D(quantity)))
        assert history.call_count == 0 and ledger.call_count == 0
        await same_as_cold()
    # a trade recorded in the past, a correction, a deletion: replayed from the database
    past = now - timedelta(days=2)
    old = await sage.book(
        user_id,
        portfolio.id,
        TradeRequest(kind="deposit", quantity=D(100), executed_at=past),
    )
    await same_as_cold()
    await sage.correct_transaction(user_id, portfolio.id, old.transaction.id, {"quantity": D(250)})
    await same_as_cold()
    await sage.delete_transaction(user_id, portfolio.id, old.transaction.id)
    await same_as_cold()
    # a refused booking changes nothing
    with pytest.raises(InvalidTransaction, match="sells"):
        await sage.book(user_id, portfolio.id, TradeRequest(kind="sell", symbol="ETH/USDT", quantity=D(99)))
    await same_as_cold()


async def test_performance_from_stored_points_equals_a_cold_computation(db, user_id):
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    start = now - timedelta(days=1)
    times = grid(start, now, H)
    await add_closes(db, "BTC/USDT", {t: D(50000) + i * 100 for i, t in enumerate(times)})
    await add_closes(db, "ETH/USDT", {t: D(2000) + (i % 5) * 10 for i, t in enumerate(times) if i != 7})
    sage = service(db, now)
    portfolio = await sage.default(user_id)
    assert portfolio is not None
    await sage.book(
        user_id, portfolio.id, TradeRequest(kind="deposit", quantity=D(5000), executed_at=start - timedelta(days=1))
    )
    for hours, quantity in ((30, "1"), (20, "0.5"), (3, "0.25")):
        await sage.book(
            user_id,
            portfolio.id,
            TradeRequest(
                kind="buy", symbol="ETH/USDT", quantity=D(quantity), price=D(2000), executed_at=now - hours * H
            ),
        )
    first = await sage.performance(user_id, portfolio.id, "1d")
    with mock.patch.object(performance_module, "candle_closes", wraps=candle_closes) as probe:
        again = await service(db, now).performance(user_id, portfolio.id, "1d")  # a new process
    # every step boundary read from the stored points: only the range's start and end are
    # valued again, ETH and BTC at each
    assert again == first and len(probe.call_args.args[1]) == 4
    assert first == await cold_performance(db, user_id, portfolio.id, "1d", now)
    assert first is not None and not first.complete
    assert ("ETH/USDT", times[7], times[7]) in {(g.symbol, g.start, g.end) for g in first.missing}
    # a trade appended now keeps the points before it and moves the last one
    await sage.book(
        user_id,
        portfolio.id,
        TradeRequest(kind="buy", symbol="ETH/USDT", quantity=D("0.1"), price=D(2000), executed_at=now),
    )
    after = await sage.performance(user_id, portfolio.id, "1d")
    assert after == await cold_performance(db, user_id, portfolio.id, "1d", now)
    assert after is not None and after.points[:-1] == first.points[:-1] and after.points[-1] != first.points[-1]


async def test_the_same_start_in_two_intervals_takes_the_minute_bar(db):
    """Of bars starting at the same time, the shortest interval's close: the answer does not
    depend on which bar the index happens to return first."""
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    bar = now - H
    async with db.session() as session:
        for interval, close in (("1d", 1), ("1h", 2), ("1m", 3)):
            await session.execute(
                text(
                    "INSERT INTO market_candles (exchange, symbol, interval, start, open, high, low, close, volume, ticks)"
                    " VALUES ('binance', 'ETH/USDT', :i, :s, 1, 3, 1, :c, 1, 1)"
                ),
                {"i": interval, "s": bar, "c": close},
            )
        await session.commit()
    closes = await candle_closes(db, [("ETH/USDT", now)], timedelta(days=1))
    assert closes.prices == {("ETH/USDT", now): D(3)}


def test_a_run_of_points_without_a_close_is_one_gap():
    t = [T0 + i * H for i in range(4)]
    entries = [Entry("deposit", None, D(10), None, D(0), T0), Entry("buy", "ETH/USDT", D(1), D(1), D(0), T0)]
    _, gaps = values_at(derive(entries).timeline, t, {("ETH/USDT", t[0]): D(1), ("ETH/USDT", t[3]): D(2)})
    assert gaps == [Gap("ETH/USDT", t[1], t[2])]
