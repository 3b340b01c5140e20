"""Market coverage benchmarks (issue 13); every figure beside a baseline from the same run.

1. Catalog search over 3,000 pairs: p50/p95 of `SymbolCatalog.search` for a mix of
   queries (prefixes, names, quotes, misses), beside a bare `str.startswith` scan of the
   same 3,000 bases (the floor of any in-memory scan). Goal: p95 < 20 ms.
2. Demand -> first live tick for a new symbol, on the local fakes (Binance WS + REST,
   Gate.io WS + REST, Valkey, PostgreSQL, the real ingestor): from `DemandSet.touch` to
   the first ticker of that symbol in Valkey (the fake pushes a tick as soon as it sees
   the SUBSCRIBE). Baseline: the same push -> Valkey path for an already-subscribed symbol.
3. Backfill of 2 years of daily and 90 days of hourly candles for 50 symbols on both
   exchanges (fakes, PostgreSQL): wall time and the Binance weight used against our budget
   and Binance's limit, Gate.io requests against its limit. Baseline: fetching the same
   pages with a bare httpx client (no budget, no parsing, no storing).

Run: .venv/bin/python -m bench.bench_market_coverage [--symbols 50] [--demands 30]
Valkey / PostgreSQL: VALKEY_URL / DATABASE_URL, else throwaway servers on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import httpx

from bench._support import median, stores
from sage.ops import schema


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- 1. catalog search ----------------------------------------------------------------------------


def synthetic_catalog(n: int = 3000) -> Any:
    from sage.market.catalog import CatalogEntry, SymbolCatalog

    rng = random.Random(13)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    quotes = ["USDT", "USDT", "USDT", "USDC", "BTC", "FDUSD", "ETH", "EUR", "TRY"]
    entries: dict[str, CatalogEntry] = {}
    while len(entries) < n:
        base = "".join(rng.choice(letters) for _ in range(rng.randint(2, 6)))
        quote = rng.choice(quotes)
        symbol = f"{base}/{quote}"
        exchanges = rng.choice([("binance",), ("gateio",), ("binance", "gateio")])
        entries[symbol] = CatalogEntry(symbol, base, quote, f"{base.title()} Coin", exchanges, False)
    catalog = SymbolCatalog(None, configured=["BTC/USDT", "ETH/USDT"], exchanges=("binance", "gateio"))  # type: ignore[arg-type]
    catalog._install(entries.values())
    return catalog


def bench_search(repeat: int) -> None:
    catalog = synthetic_catalog()
    bases = [e.base for e in catalog._entries]
    queries = ["B", "BT", "BTC", "ETH", "LIN", "X", "QZ", "coin", "usdt", "eth/us", "ZZZZZZ", "a", "KL", "MNO"]
    search, floor = [], []
    for _ in range(repeat):
        for q in queries:
            t0 = time.perf_counter()
            catalog.search(q, limit=20)
            search.append((time.perf_counter() - t0) * 1000)
            upper = q.upper()
            t0 = time.perf_counter()
            [b for b in bases if b.startswith(upper)][:20]
            floor.append((time.perf_counter() - t0) * 1000)
    print(f"== catalog search over {len(catalog):,} pairs ({len(search):,} queries)")
    print(f"{'':<44}{'p50':>10}{'p95':>10}")
    print(f"{'SymbolCatalog.search (ranked, 20 results)':<44}{median(search):>8.3f}ms{pct(search, 0.95):>8.3f}ms")
    print(f"{'baseline: bare startswith scan of the bases':<44}{median(floor):>8.3f}ms{pct(floor, 0.95):>8.3f}ms")
    print("   goal: p95 < 20 ms")
    print()


def markets(n: int, prefix: str = "S") -> list[Any]:
    from tests.market.fakes_rest import Market

    return [Market(f"{prefix}{i}", "USDT", f"{1 + i}.25", f"Sym {i}") for i in range(n)]


# --- 2. demand -> first tick -----------------------------------------------------------------------


async def bench_demand(valkey_url: str, database_url: str, demands: int) -> None:
    from sage.market.demand import DemandSet
    from sage.market.ingest import IngestOptions, Ingestor
    from sage.market.live import RunnerOptions
    from sage.observability.metrics import Metrics
    from sage.settings import Settings
    from sage.store.cache import Cache
    from sage.store.cache_setup import create_backend
    from sage.store.db import Database, create_engine
    from tests.market.fakes import FakeBinance, FakeFearGreed, FakeGateio
    from tests.market.fakes_rest import FakeBinanceRest, FakeGateioRest

    listed = markets(2 * demands + 1)
    binance, gateio, fng = FakeBinance(), FakeGateio(), FakeFearGreed()
    brest, grest = FakeBinanceRest(markets=listed), FakeGateioRest(markets=listed)
    for server in (binance, gateio, fng, brest, grest):
        await server.start()
    settings = Settings(
        database_url=database_url,
        valkey_url=valkey_url,
        market_source="live",
        symbols="S0/USDT",
        binance_ws_url=binance.url,
        gateio_ws_url=gateio.url,
        fng_url=fng.url,
        binance_rest_url=brest.url,
        gateio_rest_url=grest.url,
        jwt_secret="bench-secret-that-is-long-enough-for-hs256-0123456789",
        llm_provider="offline",
        metrics_emf=False,
    )
    metrics = Metrics()
    cache = Cache(create_backend(valkey_url), prefix="benchdemand:")
    db = Database(create_engine(settings, database_url))
    options = IngestOptions(runner=RunnerOptions(backoff_initial=0.05, backoff_max=0.5, watchdog=30.0))
    ingestor = Ingestor(settings, cache, db, metrics, options=options, owner="bench")
    ingestor.start()

    async def until(condition: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark condition not met")
            await asyncio.sleep(0.0005)

    async def in_valkey(exchange: str, symbol: str, timeout: float = 30.0) -> None:
        key = cache.key("market", "ticker", exchange, symbol)
        deadline = time.monotonic() + timeout
        while await cache.backend.get(key) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(symbol)
            await asyncio.sleep(0.0005)

    try:
        await until(lambda: ingestor.catalog.is_listed(f"S{2 * demands}/USDT"))
        await until(lambda: "s0usdt@ticker" in binance.subscribed_streams())
        demand = DemandSet(cache, ttl=900)
        print(f"== demand -> first live tick, {demands} new symbols per row (local fakes, real ingestor)")
        print(f"{'':<60}{'p50':>10}{'p95':>10}")
        symbol_ids = iter(range(1, 2 * demands + 1))
        # Spaced: one user at a time (the connection's pacer is idle). Back to back: demands
        # arrive faster than the 4 control messages/s Sage allows itself (Binance: 5/s).
        for label, spacing in (("0.3 s apart", 0.3), ("back to back", 0.0)):
            first_tick, subscribed, baseline = [], [], []
            for _ in range(demands):
                i = next(symbol_ids)
                await asyncio.sleep(spacing)
                symbol, raw = f"S{i}/USDT", f"S{i}USDT"
                stream = raw.lower() + "@ticker"
                t0 = time.perf_counter()
                await demand.touch([symbol])
                await until(lambda s=stream: s in binance.subscribed_streams())  # type: ignore[misc]
                t1 = time.perf_counter()
                await binance.push(raw, "1.5", int(time.time() * 1000))
                await in_valkey("binance", symbol)
                t2 = time.perf_counter()
                subscribed.append((t1 - t0) * 1000)
                first_tick.append((t2 - t0) * 1000)
                # baseline: an already-subscribed symbol's next tick, push -> Valkey
                await cache.backend.delete(cache.key("market", "ticker", "binance", "S0/USDT"))
                t3 = time.perf_counter()
                await binance.push("S0USDT", f"2.{i}", int(time.time() * 1000))
                await in_valkey("binance", "S0/USDT")
                baseline.append((time.perf_counter() - t3) * 1000)
            rows = (
                (f"demand -> SUBSCRIBE seen by the exchange ({label})", subscribed),
                (f"demand -> first ticker in Valkey ({label})", first_tick),
                ("baseline: subscribed symbol, push -> Valkey", baseline),
            )
            for name, values in rows:
                print(f"{name:<60}{median(values):>8.1f}ms{pct(values, 0.95):>8.1f}ms")
        print(
            f"   reconnects: binance {binance.connects - 1}, gateio {gateio.connects - 1}; "
            f"control-limit closes: {binance.rate_closes}"
        )
        print()
    finally:
        await ingestor.aclose()
        await cache.backend.delete(*await cache.backend.keys("benchdemand:*"))
        await cache.close()
        await db.dispose()
        for server in (binance, gateio, fng, brest, grest):
            await server.stop()


# --- 3. backfill ---------------------------------------------------------------------------------


async def bench_backfill(valkey_url: str, database_url: str, symbols: int) -> None:
    from sage.market.backfill import NATIVE, PAGE, CandleBackfill
    from sage.market.catalog import SymbolCatalog
    from sage.market.rest import BINANCE_WEIGHT_LIMIT_PER_MINUTE, build_exchange_apis
    from sage.observability.metrics import Metrics
    from sage.settings import Settings
    from sage.store.cache import Cache
    from sage.store.cache_setup import create_backend
    from sage.store.db import Database, create_engine
    from tests.market.fakes_rest import FakeBinanceRest, FakeGateioRest

    listed = markets(symbols, prefix="B")  # symbols no earlier part of the run has stored bars for
    brest, grest = FakeBinanceRest(markets=listed), FakeGateioRest(markets=listed)
    await brest.start()
    await grest.start()
    settings = Settings(database_url=database_url, jwt_secret="x" * 40, llm_provider="offline", metrics_emf=False)
    metrics = Metrics()
    cache = Cache(create_backend(valkey_url), prefix="benchbackfill:")
    db = Database(create_engine(settings, database_url))
    apis = build_exchange_apis(
        binance_url=brest.url,
        gateio_url=grest.url,
        cache=cache,
        metrics=metrics,
        timeout=10.0,
        binance_weight_per_minute=settings.binance_rest_weight_per_minute,
        gateio_per_second=settings.gateio_rest_requests_per_second,
        max_wait=120.0,
    )
    catalog = SymbolCatalog(db, configured=[m.base + "/USDT" for m in listed], exchanges=("binance", "gateio"))
    job = CandleBackfill(db, apis, catalog, metrics)
    plan = (("1d", 730 * 86_400), ("1h", 90 * 86_400))
    names = [m.base + "/USDT" for m in listed]
    try:
        # baseline: the same pages, bare httpx, nothing else
        now = int(time.time())
        t0 = time.perf_counter()
        async with httpx.AsyncClient(timeout=30) as client:
            for name in names:
                for interval, span in plan:
                    step = NATIVE[interval]
                    cursor = (now - span) // step * step
                    while cursor + step <= now:
                        await client.get(
                            brest.url + "/api/v3/klines",
                            params={
                                "symbol": name.replace("/", ""),
                                "interval": interval,
                                "startTime": cursor * 1000,
                                "limit": PAGE,
                            },
                        )
                        await client.get(
                            grest.url + "/spot/candlesticks",
                            params={
                                "currency_pair": name.replace("/", "_"),
                                "interval": interval,
                                "from": cursor,
                                "to": min(now, cursor + (PAGE - 1) * step),
                            },
                        )
                        cursor += PAGE * step
        bare = time.perf_counter() - t0
        brest.weights.clear()
        grest.requests.clear()
        grest.windows.clear()
        brest.requests.clear()
        await asyncio.sleep(60 - time.time() % 60 + 0.5)  # a fresh Binance minute for the real run
        t0 = time.perf_counter()
        bars = 0
        for name in names:
            for exchange in ("binance", "gateio"):
                for interval, span in plan:
                    bars += await job._backfill(exchange, name, interval, span)
        wall = time.perf_counter() - t0
        peak_minute = max(brest.weights.values())
        print(f"== backfill: 2 years daily + 90 days hourly, {symbols} symbols x 2 exchanges -> PostgreSQL")
        print(f"{'Sage CandleBackfill (budgets, parse, upsert)':<46}{wall:>8.1f}s  {bars:,} bars")
        print(f"{'baseline: same pages, bare httpx':<46}{bare:>8.1f}s")
        gate_budget = apis.gateio_budget("spot/candlesticks")
        floor = (len(grest.requests) - gate_budget.capacity) / gate_budget.per_second
        print(
            f"   (Gate.io's budget alone: {len(grest.requests)} requests at {gate_budget.per_second:.0f}/s after a burst"
            f" of {gate_budget.capacity:.0f} = {floor:.1f} s at least)"
        )
        print(
            f"   Binance weight used: {brest.total_weight():,} in {len(brest.requests)} requests; peak minute "
            f"{peak_minute:,} vs our budget {settings.binance_rest_weight_per_minute:,}/min and Binance's "
            f"{BINANCE_WEIGHT_LIMIT_PER_MINUTE:,}/min; 429s: {brest.limited_answers}"
        )
        peak10 = max(grest.windows.values()) if grest.windows else 0
        print(
            f"   Gate.io: {len(grest.requests)} candlestick requests, peak {peak10} per 10 s on the endpoint "
            f"vs Gate's 200; 429s: {grest.limited_answers}"
        )
    finally:
        await apis.close()
        await cache.backend.delete(*await cache.backend.keys("benchbackfill:*"))
        await cache.close()
        await db.dispose()
        await brest.stop()
        await grest.stop()


async def main(args: argparse.Namespace) -> None:
    bench_search(args.repeat)
    with stores(migrate=False) as urls:  # migrated here: this runs in the event loop
        await schema.upgrade(urls.database_url)
        await bench_demand(urls.valkey_url, urls.database_url, args.demands)
        await bench_backfill(urls.valkey_url, urls.database_url, args.symbols)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--demands", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=200)
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(parser.parse_args()))
