"""Shadow portfolio: summary and 1-year performance of a large ledger, and concurrent market buys.

    .venv/bin/python -m bench.bench_portfolio [--runs 30] [--users 100] [--buys 1000]

A throwaway PostgreSQL 18 on 127.0.0.1 (or DATABASE_URL) gets one portfolio of 50 symbols and
10,000 transactions spread over a year, plus candles for the year (one bar every 10 minutes
for the last 30 days, hourly before: enough for the 1-day points of a 1-year series). Figures:

  summary            PortfolioService.summary: the portfolio row, its derived state (cached
                     per ledger_version), valued at prices
  performance 1y     PortfolioService.performance(range="1y"): the stored points, the
                     range's start and end valued (checkpoints, candle closes), the series
  ... new process    the same with every in-memory cache dropped before each call (what a
                     new worker process sees): a summary reads the latest persisted
                     checkpoint (sage.portfolio.checkpoints), a performance series the stored
                     points (sage.portfolio.points) and values the range's start and end
  ... never valued   a performance series with no stored point either (the first series of
                     a portfolio, once per step): reads and replays the 10,000 transactions
                     from the checkpoints and probes every close

The benchmark's process freezes its heap after seeding (sage.serving.settle_heap), as
`sage serve` does once started: full collections then walk only what the service allocates.
  ... back-dated     concurrency 1: before each call (untimed), a transaction 30 days back is
                     moved by a second, through Sage (PortfolioService.correct_transaction:
                     replays, writes, stores the new state and its checkpoints) or by an
                     UPDATE from outside Sage (the trigger bumps the version and drops the
                     checkpoints from that time on); then the read in the same process (kept
                     closes stay: they are market data)
  baseline           asyncpg running the SQL that reads the same rows (the ledger; for
                     performance also the closes of every held symbol at every point),
                     nothing else, through a pool of the same size

each at concurrency 1 and 10 (10 callers at once, each call's latency), with the load
average of the (shared) machine printed beside.

Then --buys concurrent market buys by --users users (service level: symbol check, price,
lock, replay, insert), each sized so only 6 of a user's 10 fit in the starting cash, beside
the same number of bare INSERTs. The invariant check after the run: every accepted buy is
booked exactly once (its idempotency key appears once), no refused buy is booked, and every
portfolio's replayed cash is >= 0 at every point of its history.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from bench._support import stores
from sage.errors import SageError
from sage.market.catalog import ListedSymbols, SymbolCatalog
from sage.market.models import EXCHANGES
from sage.ops import schema
from sage.portfolio.book import load_state
from sage.portfolio.ledger import Entry, Ledger
from sage.portfolio.performance import CLOSES_SQL, grid, wanted, window
from sage.portfolio.service import PortfolioService, TradeRequest
from sage.serving import settle_heap
from sage.settings import Settings
from sage.store.db import Database, create_engine

D = Decimal
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SYMBOLS = [f"C{i:02d}/USDT" for i in range(49)] + ["BTC/USDT"]
GOAL_MS = 100.0


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: Decimal
    change_pct_24h: Decimal | None = None
    as_of: datetime = NOW
    stale: bool = False
    diverged: bool = False


class Prices:
    """A MarketReader answering instantly (the market service is not what is measured)."""

    def __init__(self, prices: dict[str, Decimal]) -> None:
        self.prices = prices

    async def consolidated(self, symbols: Sequence[str] | None = None) -> list[Quote]:
        return [Quote(s, self.prices[s]) for s in symbols or self.prices if s in self.prices]

    async def fear_greed(self) -> None:
        return None


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm-up
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, samples: list[float]) -> str:
    return f"  {name:<46} p50 {statistics.median(samples):8.1f} ms   p95 {p95(samples):8.1f} ms"


async def seed_ledger(conn: asyncpg.Connection, transactions: int) -> tuple[uuid.UUID, uuid.UUID]:
    user_id, portfolio_id = uuid.uuid4(), uuid.uuid4()
    start = NOW - timedelta(days=365)
    await conn.execute("INSERT INTO users (id, email, password_hash) VALUES ($1, 'bench@example.com', 'x')", user_id)
    await conn.execute(
        "INSERT INTO portfolios (id, user_id, name, starting_cash, is_default, created_at) VALUES ($1, $2, 'Bench', 0, true, $3)",
        portfolio_id,
        user_id,
        start,
    )
    rng = random.Random(7)
    ledger = Ledger()
    records = []
    step = timedelta(days=365) / transactions
    for i in range(transactions):
        at = start + step * i
        symbol = SYMBOLS[i % len(SYMBOLS)]
        held = ledger.holdings.get(symbol)
        price = D(100 + (i % 37))
        if i % 50 == 0:
            entry = Entry("deposit", None, D(100_000), None, D(0), at)
        elif held is not None and rng.random() < 0.4:
            entry = Entry("sell", symbol, (held.quantity / 2).quantize(D("1e-8")) or held.quantity, price, D("0.1"), at)
        else:
            entry = Entry("buy", symbol, D("1.5"), price, D("0.15"), at)
        ledger.apply(entry)
        records.append(
            (
                uuid.uuid4(),
                portfolio_id,
                entry.kind,
                entry.symbol,
                entry.quantity,
                entry.price,
                entry.fee,
                at,
                None,
                None,
                at,
            )
        )
    await conn.copy_records_to_table(
        "portfolio_transactions",
        records=records,
        columns=[
            "id",
            "portfolio_id",
            "kind",
            "symbol",
            "quantity",
            "price",
            "fee",
            "executed_at",
            "note",
            "idempotency_key",
            "created_at",
        ],
    )
    candles = []
    t = start - timedelta(days=1)
    while t <= NOW:
        for n, symbol in enumerate(SYMBOLS):
            price = D(100 + n) + D((t.timestamp() // 3600) % 13)
            candles.append(("binance", symbol, t, price, price, price, price, D(1), 1))
        t += timedelta(minutes=10) if t >= NOW - timedelta(days=30) else timedelta(hours=1)
    await conn.copy_records_to_table(
        "market_candles",
        records=candles,
        columns=["exchange", "symbol", "start", "open", "high", "low", "close", "volume", "ticks"],
    )
    await conn.execute("ANALYZE")
    print(f"  seeded {transactions:,} transactions over 50 symbols and {len(candles):,} candles")
    return user_id, portfolio_id


async def concurrently(concurrency: int, runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    """`concurrency` callers, each making `runs` calls one after another: every call's latency."""
    await call()  # warm-up
    out: list[float] = []

    async def caller() -> None:
        for _ in range(runs):
            start = time.perf_counter()
            await call()
            out.append((time.perf_counter() - start) * 1000)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return out


def compare(name: str, sage: list[float], baseline: list[float], goal_ms: float | None = GOAL_MS) -> None:
    ratio = p95(sage) / p95(baseline)
    verdict = (
        "" if goal_ms is None else f"   goal p95 < {goal_ms:.0f} ms: {'met' if p95(sage) < goal_ms else 'NOT met'}"
    )
    print(row(f"{name} (Sage)", sage))
    print(
        row("  baseline: the raw SQL reading the same rows", baseline) + f"   Sage/baseline p95 x{ratio:.2f}{verdict}"
    )


async def ledger_and_performance(url: str, settings: Settings, runs: int, transactions: int) -> None:
    conn = await asyncpg.connect(url)
    user_id, portfolio_id = await seed_ledger(conn, transactions)
    db = Database(create_engine(settings, url))
    prices = Prices({s: D(120) for s in SYMBOLS})
    service = PortfolioService(
        db,
        prices,
        ListedSymbols(SymbolCatalog(db, configured=SYMBOLS, exchanges=["binance"])),
        fee_rate=D("0.001"),
        starting_cash=D(0),
    )
    pool_size = settings.db_pool_size + settings.db_max_overflow
    pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size)
    read_rows = (
        "SELECT id, kind, symbol, quantity, price, fee, executed_at, seq FROM portfolio_transactions"
        " WHERE portfolio_id = $1 ORDER BY executed_at, seq"
    )
    start, step = window("1y", NOW, None)
    times = grid(start, NOW, step)
    async with db.session() as session:
        state = await load_state(session, portfolio_id)
    pairs = wanted(times, state.timeline.states_at(times))

    async def raw_summary() -> None:
        async with pool.acquire() as c:
            await c.fetch(read_rows, portfolio_id)

    async def raw_performance() -> None:
        async with pool.acquire() as c:
            await c.fetch(read_rows, portfolio_id)
            await c.fetch(CLOSES_SQL, [s for s, _ in pairs], [t for _, t in pairs], step, *EXCHANGES)

    async def summary() -> None:
        await service.summary(user_id, portfolio_id)

    async def summary_cold() -> None:
        service.states.clear()
        await service.summary(user_id, portfolio_id)

    async def performance() -> None:
        await service.performance(user_id, portfolio_id, "1y")

    async def performance_cold() -> None:
        service.states.clear()
        service.closes.clear()
        await service.performance(user_id, portfolio_id, "1y")

    async def performance_never_valued() -> None:
        service.states.clear()
        service.closes.clear()
        await conn.execute("DELETE FROM portfolio_points WHERE portfolio_id = $1", portfolio_id)
        await service.performance(user_id, portfolio_id, "1y")

    edited = await conn.fetchval(
        "SELECT id FROM portfolio_transactions WHERE portfolio_id = $1 AND kind = 'deposit'"
        " AND executed_at < $2 ORDER BY executed_at DESC LIMIT 1",
        portfolio_id,
        NOW - timedelta(days=30),
    )
    flip = [timedelta(seconds=1)]

    edits: list[float] = []

    async def back_dated(runs: int, call: Callable[[], Awaitable[Any]], *, through_sage: bool) -> list[float]:
        """A deposit 30 days back moved by a second before each (timed) call: by Sage's
        correction (timed apart, in `edits`), or by an UPDATE from outside Sage."""
        out = []
        for _ in range(runs + 1):
            if through_sage:
                at = await conn.fetchval("SELECT executed_at FROM portfolio_transactions WHERE id = $1", edited)
                start = time.perf_counter()
                await service.correct_transaction(user_id, portfolio_id, edited, {"executed_at": at + flip[0]})
                edits.append((time.perf_counter() - start) * 1000)
            else:
                await conn.execute(
                    "UPDATE portfolio_transactions SET executed_at = executed_at + $2 WHERE id = $1", edited, flip[0]
                )
            flip[0] = -flip[0]
            start = time.perf_counter()
            await call()
            out.append((time.perf_counter() - start) * 1000)
        return out[1:]

    # as `sage serve` does once started: the heap alive now (modules, the seeding's leftovers)
    # is frozen, so full collections walk only what the service allocates from here on
    settle_heap()
    result = await service.performance(user_id, portfolio_id, "1y")
    probed = service.closes.probed
    await service.performance(user_id, portfolio_id, "1y")
    repeat = service.closes.probed - probed
    stored = await conn.fetchval("SELECT count(*) FROM portfolio_points WHERE portfolio_id = $1", portfolio_id)
    print(
        f"  1y series: {len(result.points)} points, complete={result.complete},"
        f" TWR {result.time_weighted_return_pct:.2f} %; {probed:,} closes probed the first time,"
        f" {stored} points stored; a repeat probes {repeat} (the range's start and end)"
    )
    for concurrency in (1, 10):
        per = runs if concurrency == 1 else max(1, runs // 3)
        print(
            f"\nLedger of {transactions:,} transactions, 50 symbols: concurrency {concurrency}, {per} calls each"
            f" (pool {pool_size}); load average before: {load()}"
        )
        compare(
            "summary", await concurrently(concurrency, per, summary), await concurrently(concurrency, per, raw_summary)
        )
        compare(
            "performance 1y (1d points)",
            await concurrently(concurrency, per, performance),
            await concurrently(concurrency, per, raw_performance),
        )
        cold = max(1, per // 3)
        print(f"  new process (every in-memory cache dropped before each call; {cold} calls each):")
        compare(
            "  summary, new process",
            await concurrently(concurrency, cold, summary_cold),
            await concurrently(concurrency, cold, raw_summary),
        )
        compare(
            "  performance 1y, new process",
            await concurrently(concurrency, cold, performance_cold),
            await concurrently(concurrency, cold, raw_performance),
        )
        if concurrency == 1:
            print("  the first series of a portfolio never valued (no stored point; once per portfolio and step):")
            compare(
                "  performance 1y, never valued",
                await concurrently(concurrency, cold, performance_never_valued),
                await concurrently(concurrency, cold, raw_performance),
                goal_ms=None,
            )
        if concurrency == 1:
            for through_sage in (True, False):
                how = "through Sage (PATCH)" if through_sage else "by an UPDATE from outside Sage"
                print(f"  after a back-dated edit 30 days back {how} ({cold} calls each):")
                compare(
                    "  summary, back-dated edit",
                    await back_dated(cold, summary, through_sage=through_sage),
                    await timed(cold, raw_summary),
                )
                compare(
                    "  performance 1y, back-dated edit",
                    await back_dated(cold, performance, through_sage=through_sage),
                    await timed(cold, raw_performance),
                )
            print(row("  (the correction itself, through Sage: replay, write, precompute)", edits))
    print(f"  load average after: {load()}")
    await pool.close()
    await db.dispose()
    await conn.close()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def concurrent_buys(url: str, settings: Settings, users: int, buys: int) -> None:
    conn = await asyncpg.connect(url)
    db = Database(create_engine(settings, url))
    prices = Prices({"BTC/USDT": D(10000)})
    service = PortfolioService(
        db,
        prices,
        ListedSymbols(SymbolCatalog(db, configured=["BTC/USDT"], exchanges=["binance"])),
        fee_rate=D("0.001"),
        starting_cash=D(10000),
    )
    user_ids = [uuid.uuid4() for _ in range(users)]
    await conn.executemany(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')", [(u, f"{u}@example.com") for u in user_ids]
    )
    for user_id in user_ids:
        await service.default(user_id)
    per_user = buys // users
    requests = [(user_ids[i % users], f"buy-{i}") for i in range(per_user * users)]
    random.Random(3).shuffle(requests)
    latencies: list[float] = []
    accepted: dict[str, uuid.UUID] = {}
    refused: list[str] = []

    async def one(user_id: uuid.UUID, key: str) -> None:
        start = time.perf_counter()
        try:
            booked = await service.book(
                user_id, None, TradeRequest(kind="buy", quantity=D("0.15"), symbol="BTC/USDT"), idempotency_key=key
            )
            accepted[key] = booked.transaction.id
        except SageError as exc:
            assert exc.status == 422, exc.message
            refused.append(key)
        latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(u, k) for u, k in requests))
    elapsed = time.perf_counter() - started

    # baseline: the same number of bare INSERTs through the same pool size, no lock, no checks
    portfolio_ids = [r["id"] for r in await conn.fetch("SELECT id FROM portfolios WHERE user_id = ANY($1)", user_ids)]
    pool = await asyncpg.create_pool(url, min_size=1, max_size=settings.db_pool_size + settings.db_max_overflow)

    async def bare(i: int) -> None:
        async with pool.acquire() as c:
            await c.execute(
                "INSERT INTO portfolio_transactions (id, portfolio_id, kind, symbol, quantity, price, fee, executed_at, note)"
                " VALUES ($1, $2, 'buy', 'BTC/USDT', 0.15, 10000, 1.5, now(), 'bare')",
                uuid.uuid4(),
                portfolio_ids[i % len(portfolio_ids)],
            )

    bare_start = time.perf_counter()
    await asyncio.gather(*(bare(i) for i in range(len(requests))))
    bare_elapsed = time.perf_counter() - bare_start
    await conn.execute("DELETE FROM portfolio_transactions WHERE note = 'bare'")
    await pool.close()

    # invariants
    keys = await conn.fetch(
        "SELECT idempotency_key, count(*) AS n FROM portfolio_transactions WHERE idempotency_key IS NOT NULL GROUP BY 1"
    )
    booked = {r["idempotency_key"]: r["n"] for r in keys}
    assert all(n == 1 for n in booked.values()), "a buy was booked twice"
    assert set(booked) == set(accepted), "an accepted buy is missing or a refused one was booked"
    negative = 0
    for portfolio_id in portfolio_ids:
        ledger = Ledger()
        rows = await conn.fetch(
            "SELECT kind, symbol, quantity, price, fee, executed_at FROM portfolio_transactions"
            " WHERE portfolio_id = $1 ORDER BY executed_at, seq",
            portfolio_id,
        )
        for r in rows:
            ledger.apply(Entry(r["kind"], r["symbol"], r["quantity"], r["price"], r["fee"], r["executed_at"]))
            negative += ledger.cash < 0
    assert negative == 0, "cash went negative"
    expected = users * 6  # 6 x (1500 + 1.5 fee) = 9009 <= 10,000 < 7 x 1501.5
    print(
        f"\n{len(requests):,} concurrent market buys by {users} users (pool {settings.db_pool_size}+{settings.db_max_overflow})"
    )
    print(
        f"  Sage: {len(requests) / elapsed:8.0f} buys/s   p50 {statistics.median(latencies):7.1f} ms"
        f"   p95 {p95(latencies):7.1f} ms   accepted {len(accepted)} (expected {expected}), refused {len(refused)}"
    )
    print(f"  baseline: bare INSERTs, same pool size: {len(requests) / bare_elapsed:8.0f} inserts/s")
    print(
        f"  invariants: no double booking, no lost buy, cash >= 0 everywhere: {'OK' if len(accepted) == expected else 'CHECK'}"
    )
    await db.dispose()
    await conn.close()


async def main(runs: int, users: int, buys: int, transactions: int) -> None:
    with stores(valkey=False, migrate=False) as urls:  # migrated below: this runs in the event loop
        url = urls.database_url
        await schema.upgrade(url)
        # one process's pool (5 + 2) takes all 1,000 orders here, where production spreads them
        # over tasks: the pool wait is allowed 120 s so the run measures the ledger, not the queue
        settings = Settings(database_url=url, market_source="off", llm_provider="offline", db_pool_timeout_seconds=120)
        await ledger_and_performance(url, settings, runs, transactions)
        await concurrent_buys(url, settings, users, buys)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--buys", type=int, default=1000)
    parser.add_argument("--transactions", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.users, args.buys, args.transactions))
