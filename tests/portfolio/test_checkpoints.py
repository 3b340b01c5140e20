"""Persisted checkpoints and coalesced reads give exactly what replaying the whole ledger gives.

Checkpoints are kept every 5 transactions here (and after any read that replayed 3 or more),
so short histories cross many of them.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from sqlalchemy import text

from sage.portfolio import checkpoints
from sage.portfolio import performance as performance_module
from sage.portfolio import service as service_module
from sage.portfolio import state as state_module
from sage.portfolio.book import TradeRequest, load_entries, load_state
from sage.portfolio.ledger import replay
from sage.portfolio.performance import grid
from sage.portfolio.service import PortfolioService
from sage.store.db import Database
from tests.portfolio.support import (
    add_closes,
    cold_performance,
    deposit_from_outside,
    ledger_version,
    portfolio_service,
    valid_history,
)

D = Decimal
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def small_checkpoints() -> Iterator[None]:
    with mock.patch.object(checkpoints, "PERSIST_EVERY", 5), mock.patch.object(checkpoints, "PERSIST_TAIL", 3):
        yield


def process(db: Database) -> PortfolioService:
    """A service with empty in-memory caches: what a new worker process is."""
    return portfolio_service(db, NOW)


async def replayed(db: Database, portfolio_id: uuid.UUID) -> str:
    """The final ledger of the whole history replayed, as it prints."""
    async with db.session() as session:
        return repr((await load_state(session, portfolio_id)).ledger)


async def stored(db: Database, portfolio_id: uuid.UUID) -> list[tuple[datetime, int]]:
    async with db.session() as session:
        rows = await session.execute(
            text("SELECT executed_at, position FROM portfolio_checkpoints WHERE portfolio_id = :p ORDER BY 1"),
            {"p": portfolio_id},
        )
        return [(r[0], int(r[1])) for r in rows]


async def history(sage: PortfolioService, user_id: uuid.UUID, trades: int) -> uuid.UUID:
    """A portfolio with `trades` buys and sells of two symbols, one an hour up to NOW."""
    portfolio = await sage.default(user_id)
    assert portfolio is not None
    await sage.book(
        user_id,
        portfolio.id,
        TradeRequest(kind="deposit", quantity=D(50000), executed_at=NOW - timedelta(hours=trades + 2)),
    )
    for i in range(trades):
        symbol = ("BTC/USDT", "ETH/USDT")[i % 2]
        kind = "sell" if i % 4 == 3 else "buy"
        quantity = D("0.1") if kind == "sell" else D("0.3")
        await sage.book(
            user_id,
            portfolio.id,
            TradeRequest(
                kind=kind,
                symbol=symbol,
                quantity=quantity,
                price=D(1000 + 7 * i) / 3,
                executed_at=NOW - timedelta(hours=trades - i),
            ),
        )
    return portfolio.id


async def count(db: Database, portfolio_id: uuid.UUID) -> int:
    async with db.session() as session:
        found = await session.scalar(
            text("SELECT count(*) FROM portfolio_transactions WHERE portfolio_id = :p"), {"p": portfolio_id}
        )
        return int(found)


async def read(db: Database, portfolio_id: uuid.UUID) -> checkpoints.Replayed:
    async with db.session() as session:
        return await checkpoints.read_ledger(session, portfolio_id)


@pytest.mark.parametrize("seed", range(6))
async def test_the_states_read_from_checkpoints_equal_replaying_up_to_each_time(db, user_id, seed):
    """Random histories (checkpoints every 5 transactions), states asked at every hour and at
    random times between: the checkpoint before each time and what follows, replayed."""
    rng = random.Random(seed)
    kinds, symbols = ["buy", "buy", "sell", "deposit", "withdraw"], ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    plan = [
        (
            rng.choice(kinds),
            rng.choice(symbols),
            D(rng.randint(1, 5000)) / 1000,
            D(rng.randint(100, 300000)) / 100,
            D(rng.randint(0, 200)) / 100,
            rng.randint(0, 3),
        )
        for _ in range(rng.randint(10, 45))
    ]
    entries = valid_history(plan, NOW - timedelta(days=7))
    portfolio = await process(db).default(user_id)
    assert portfolio is not None
    async with db.session() as session:
        for e in entries:  # booking order is the plan's: seq follows it
            await session.execute(
                text(
                    "INSERT INTO portfolio_transactions (id, portfolio_id, kind, symbol, quantity, price, fee, executed_at)"
                    " VALUES (:id, :p, :k, :s, :q, :pr, :f, :at)"
                ),
                {
                    "id": uuid.uuid4(),
                    "p": portfolio.id,
                    "k": e.kind,
                    "s": e.symbol,
                    "q": e.quantity,
                    "pr": e.price,
                    "f": e.fee,
                    "at": e.executed_at,
                },
            )
        await session.commit()
    current = await read(db, portfolio.id)
    assert await checkpoints.store(db, portfolio.id, current.version, current.checkpoints)
    last = entries[-1].executed_at
    times = sorted(
        {
            *grid(entries[0].executed_at - timedelta(hours=1), last + timedelta(hours=1), timedelta(hours=1)),
            *(entries[0].executed_at + (last - entries[0].executed_at) * rng.random() for _ in range(10)),
            *(e.executed_at for e in rng.sample(entries, 3)),
        }
    )
    async with db.session() as session:
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        states, _ = await checkpoints.states_at(raw, portfolio.id, times)
        booked = await load_entries(session, portfolio.id)  # as stored: amounts at 18 places
    assert await stored(db, portfolio.id)  # checkpoints to start from
    for t, state in zip(times, states, strict=True):
        expected = replay(e for e in booked if e.executed_at <= t)
        assert (state.cash, state.net_deposits) == (expected.cash, expected.net_deposits)
        assert repr(state.cash) == repr(expected.cash)
        assert list(state.held.items()) == [(s, h.quantity) for s, h in expected.holdings.items()]


async def test_a_write_that_replays_stores_the_checkpoints_of_the_history_it_made(db, user_id):
    portfolio_id = await history(process(db), user_id, 22)  # back-dated trades: each replays
    total = await count(db, portfolio_id)
    assert [position for _, position in await stored(db, portfolio_id)] == [*range(5, total, 5), total]
    assert (await read(db, portfolio_id)).started_at == total  # nothing left to replay
    second = process(db)
    summary = await second.summary(user_id, portfolio_id)
    tip = second.states.tip(portfolio_id, await ledger_version(db, portfolio_id))
    assert tip is not None and repr(tip.ledger) == await replayed(db, portfolio_id)
    assert summary == await process(db).summary(user_id, portfolio_id)


async def test_a_reader_without_a_checkpoint_replays_all_and_stores_them(db, user_id):
    portfolio_id = await history(process(db), user_id, 22)
    total = await count(db, portfolio_id)
    async with db.session() as session:  # as after writes from outside Sage (a COPY, psql)
        await session.execute(text("DELETE FROM portfolio_checkpoints"))
        await session.commit()
    summary = await process(db).summary(user_id, portfolio_id)
    assert [position for _, position in await stored(db, portfolio_id)] == [*range(5, total, 5), total]
    second = process(db)
    assert await second.summary(user_id, portfolio_id) == summary
    tip = second.states.tip(portfolio_id, await ledger_version(db, portfolio_id))
    assert tip is not None and repr(tip.ledger) == await replayed(db, portfolio_id)


async def checkpoints_hold(db: Database, portfolio_id: uuid.UUID) -> None:
    """Every stored checkpoint is the replay of the history as it is now, up to it."""
    async with db.session() as session:
        entries = (await load_state(session, portfolio_id)).entries
        rows = await session.execute(
            text("SELECT position, seq, state::text FROM portfolio_checkpoints WHERE portfolio_id = :p"),
            {"p": portfolio_id},
        )
        for position, seq, state in rows:
            assert entries[position - 1].seq == seq
            assert repr(checkpoints.from_json(json.loads(state))) == repr(replay(entries[:position]))


async def test_a_write_from_outside_sage_drops_the_checkpoints_from_its_time_on(db, user_id):
    sage = process(db)
    portfolio_id = await history(sage, user_id, 22)
    at = NOW - timedelta(hours=11, minutes=30)
    await deposit_from_outside(db, portfolio_id, 7, at)
    kept = await stored(db, portfolio_id)
    assert kept and all(t < at for t, _ in kept)
    again = await read(db, portfolio_id)
    assert again.started_at == max(position for _, position in kept)  # replays from just before the write
    assert repr(again.ledger) == await replayed(db, portfolio_id)
    assert await sage.summary(user_id, portfolio_id) == await process(db).summary(user_id, portfolio_id)
    await checkpoints_hold(db, portfolio_id)
    # an update moving a transaction back drops from the earlier of its two times
    earlier = NOW - timedelta(hours=20, minutes=10)
    async with db.session() as session:
        await session.execute(
            text(
                "UPDATE portfolio_transactions SET executed_at = :t WHERE id = (SELECT id FROM portfolio_transactions"
                " WHERE portfolio_id = :p AND kind = 'buy' ORDER BY executed_at DESC LIMIT 1)"
            ),
            {"t": earlier, "p": portfolio_id},
        )
        await session.commit()
    assert all(t < earlier for t, _ in await stored(db, portfolio_id))
    assert await process(db).summary(user_id, portfolio_id) == await sage.summary(user_id, portfolio_id)
    assert repr((await read(db, portfolio_id)).ledger) == await replayed(db, portfolio_id)
    await checkpoints_hold(db, portfolio_id)


async def test_a_back_dated_write_through_sage_stores_the_checkpoints_of_the_new_history(db, user_id):
    sage = process(db)
    portfolio_id = await history(sage, user_id, 22)
    at = NOW - timedelta(hours=11, minutes=30)
    booked = await sage.book(user_id, portfolio_id, TradeRequest(kind="deposit", quantity=D(7), executed_at=at))
    await checkpoints_hold(db, portfolio_id)
    assert (await read(db, portfolio_id)).started_at == await count(db, portfolio_id)
    await sage.correct_transaction(
        user_id, portfolio_id, booked.transaction.id, {"executed_at": at - timedelta(hours=5)}
    )
    await checkpoints_hold(db, portfolio_id)
    await sage.delete_transaction(user_id, portfolio_id, booked.transaction.id)
    await checkpoints_hold(db, portfolio_id)
    assert (await read(db, portfolio_id)).started_at == await count(db, portfolio_id)
    assert await process(db).summary(user_id, portfolio_id) == await sage.summary(user_id, portfolio_id)


async def test_a_checkpoint_of_a_version_the_ledger_has_moved_past_is_not_stored(db, user_id):
    portfolio_id = await history(process(db), user_id, 12)
    async with db.session() as session:
        await session.execute(text("DELETE FROM portfolio_checkpoints"))
        await session.commit()
    old = await read(db, portfolio_id)  # derived from this version; then a back-dated write
    assert old.checkpoints
    await deposit_from_outside(db, portfolio_id, 1, NOW - timedelta(hours=30))
    assert not await checkpoints.store(db, portfolio_id, old.version, old.checkpoints)
    assert await stored(db, portfolio_id) == []
    current = await read(db, portfolio_id)
    assert await checkpoints.store(db, portfolio_id, current.version, current.checkpoints)
    assert await stored(db, portfolio_id) != []
    await checkpoints_hold(db, portfolio_id)


async def hourly_closes(db: Database) -> None:
    times = grid(NOW - timedelta(days=1), NOW, timedelta(hours=1))
    await add_closes(db, "BTC/USDT", {t: D(50000) + i * 37 for i, t in enumerate(times)})
    await add_closes(db, "ETH/USDT", {t: D(2000) + (i % 7) * 11 for i, t in enumerate(times)})


async def test_after_a_back_dated_write_only_the_later_points_are_valued_again(db, user_id):
    await hourly_closes(db)
    sage = process(db)
    portfolio_id = await history(sage, user_id, 22)
    before = await sage.performance(user_id, portfolio_id, "1d")
    at = NOW - timedelta(hours=11, minutes=30)
    await sage.book(user_id, portfolio_id, TradeRequest(kind="deposit", quantity=D(7), executed_at=at))
    with (
        mock.patch.object(checkpoints, "states_at", wraps=checkpoints.states_at) as read,
        mock.patch.object(service_module, "value", wraps=performance_module.value) as valued,
    ):
        after = await sage.performance(user_id, portfolio_id, "1d")
    assert read.call_count == 0  # the write derived the new state already: its timeline
    assert min(valued_boundaries(valued)) > at  # only the points after the write were valued again
    assert after == await process(db).performance(user_id, portfolio_id, "1d")  # a new process agrees
    assert after == await cold_performance(db, user_id, portfolio_id, "1d", NOW)
    assert before is not None and after is not None and before.points[0] == after.points[0]
    moved = [b.value - a.value for a, b in zip(before.points, after.points, strict=True) if a.at > at]
    assert moved and all(m == 7 for m in moved)  # the deposit moves every later point by 7
    await same_state(sage, db, portfolio_id)


def valued_boundaries(value: mock.MagicMock) -> list[datetime]:
    """The step boundaries a series valued (its start and end are valued every time)."""
    times = value.call_args.args[0]
    return [t for t in times if t not in (NOW - timedelta(days=1), NOW)]


async def test_after_a_write_from_outside_sage_only_the_later_points_are_valued_again(db, user_id):
    await hourly_closes(db)
    sage = process(db)
    portfolio_id = await history(sage, user_id, 22)
    before = await sage.performance(user_id, portfolio_id, "1d")
    at = NOW - timedelta(hours=11, minutes=30)
    await deposit_from_outside(db, portfolio_id, 7, at)
    with (
        mock.patch.object(checkpoints, "from_json", wraps=checkpoints.from_json) as resumed,
        mock.patch.object(service_module, "value", wraps=performance_module.value) as valued,
    ):
        after = await sage.performance(user_id, portfolio_id, "1d")
    assert resumed.call_count >= 1  # the states read from the checkpoints before them, not from the start
    assert min(valued_boundaries(valued)) > at
    assert after == await process(db).performance(user_id, portfolio_id, "1d")
    assert after == await cold_performance(db, user_id, portfolio_id, "1d", NOW)
    assert before is not None and after is not None and before.points[0] == after.points[0]
    await checkpoints_hold(db, portfolio_id)


async def same_state(sage: PortfolioService, db: Database, portfolio_id: uuid.UUID) -> None:
    fresh = await load_state_of(db, portfolio_id)
    kept = sage.states.get(portfolio_id, await ledger_version(db, portfolio_id))
    assert kept is not None and kept.entries == fresh.entries and kept.timeline == fresh.timeline
    assert repr(kept.ledger) == repr(fresh.ledger)


async def load_state_of(db: Database, portfolio_id: uuid.UUID) -> state_module.LedgerState:
    async with db.session() as session:
        return await load_state(session, portfolio_id)


async def test_every_read_after_random_writes_from_two_processes_equals_the_whole_replay(db, user_id):
    await hourly_closes(db)
    rng = random.Random(14)
    writer, reader = process(db), process(db)
    portfolio_id = await history(writer, user_id, 16)
    for _ in range(12):
        rows = await writer.transactions(user_id, portfolio_id, limit=1000)
        action = rng.choice(["deposit", "withdraw", "delete", "move"])
        at = NOW - timedelta(hours=rng.randint(0, 18), minutes=rng.randint(0, 59))
        if action in ("deposit", "withdraw"):
            await writer.book(
                user_id, portfolio_id, TradeRequest(kind=action, quantity=D(rng.randint(1, 9)), executed_at=at)
            )
        else:
            deposits = [r for r in rows if r.kind == "deposit" and r.quantity < 10]
            if not deposits:
                continue
            target = rng.choice(deposits)
            if action == "delete":
                await writer.delete_transaction(user_id, portfolio_id, target.id)
            else:
                await writer.correct_transaction(user_id, portfolio_id, target.id, {"executed_at": at})
        whole = await replayed(db, portfolio_id)
        # the other process (its cache of an older version), a new one, and the writer agree
        summaries = [await s.summary(user_id, portfolio_id) for s in (reader, process(db), writer)]
        assert summaries[0] == summaries[1] == summaries[2]
        await checkpoints_hold(db, portfolio_id)
        for sage in (reader, writer):
            tip = sage.states.tip(portfolio_id, await ledger_version(db, portfolio_id))
            assert tip is not None and repr(tip.ledger) == whole
        # the series: from stored points, the writer's timeline or checkpoints, never different
        series = [await s.performance(user_id, portfolio_id, "1d") for s in (reader, process(db), writer)]
        assert series[0] == series[1] == series[2]
        assert series[0] == await cold_performance(db, user_id, portfolio_id, "1d", NOW)
        fresh = await load_state_of(db, portfolio_id)
        kept = writer.states.get(portfolio_id, await ledger_version(db, portfolio_id))  # a write that replayed keeps it
        if kept is not None:
            assert kept.entries == fresh.entries and kept.timeline == fresh.timeline


async def test_concurrent_cold_summaries_read_the_ledger_once(db, user_id):
    portfolio_id = await history(process(db), user_id, 8)
    sage = process(db)
    with mock.patch.object(checkpoints, "read_ledger", wraps=checkpoints.read_ledger) as reads:
        results = await asyncio.gather(*(sage.summary(user_id, portfolio_id) for _ in range(10)))
    assert reads.call_count == 1 and all(r == results[0] for r in results)


async def test_concurrent_identical_performance_reads_compute_once(db, user_id):
    portfolio_id = await history(process(db), user_id, 8)
    sage = process(db)
    await sage.summary(user_id, portfolio_id)
    gate = asyncio.Event()
    computed = sage._series

    async def held(*args: object, **kwargs: object) -> object:
        await gate.wait()
        return await computed(*args, **kwargs)  # type: ignore[arg-type]

    with mock.patch.object(sage, "_series", side_effect=held) as compute:
        calls = [asyncio.ensure_future(sage.performance(user_id, portfolio_id, "1d")) for _ in range(10)]
        async with asyncio.timeout(60):  # a guard against hanging, not a measurement
            while sage.series.joined < 9:  # all ten asked: one computing, nine joined
                await asyncio.sleep(0.01)
        gate.set()
        results = await asyncio.gather(*calls)
    assert compute.call_count == 1 and all(r == results[0] for r in results)
    # another range, or another version, is another computation
    other = await sage.performance(user_id, portfolio_id, "1w")
    assert other is not None and other.range == "1w" and sage.series.joined == 9


async def test_concurrent_identical_summaries_value_once(db, user_id):
    portfolio_id = await history(process(db), user_id, 8)
    sage = process(db)
    await sage.summary(user_id, portfolio_id)
    gate = asyncio.Event()
    priced = sage.quotes

    async def held(symbols: object) -> object:
        await gate.wait()
        return await priced(symbols)  # type: ignore[arg-type]

    with mock.patch.object(sage, "quotes", side_effect=held) as quotes:
        calls = [asyncio.ensure_future(sage.summary(user_id, portfolio_id)) for _ in range(10)]
        async with asyncio.timeout(60):  # a guard against hanging, not a measurement
            while sage.summaries.joined < 9:
                await asyncio.sleep(0.01)
        gate.set()
        results = await asyncio.gather(*calls)
    assert quotes.call_count == 1 and all(r == results[0] for r in results)
