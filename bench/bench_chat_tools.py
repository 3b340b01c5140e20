"""Chat tool use: the overhead of one tool round trip, next to the raw service call it makes.

    .venv/bin/python -m bench.bench_chat_tools [--requests 200] [--repeats 3]

Three processes on loopback, as in bench_chat_stream: the fake Anthropic API (the real
tool-use streaming events), one Sage server (real PostgreSQL and Valkey, seeded with
tickers and 7 days of 1m candles), and this client.

Tool round trip: the fake answers "PRICE" / "CANDLES" questions with a `tool_use` block
(get_price of BTC, get_candles of BTC 1h over the last 24 h) and stamps the moment its
`message_stop` is written. When Sage's next request arrives carrying the `tool_result`,
the fake subtracts: model's tool_use stop -> Sage reads it, runs the tool (PostgreSQL /
Valkey), builds and sends the next request -> the fake has read it. It writes that figure
into its final answer, which the client reads. Both stamps are taken in the fake process.
The fake closes each streamed connection (like bench_chat_stream), so the figure includes
opening a new loopback connection for the next request.
Baseline in the same run: the raw service calls the tools make (MarketService.consolidated,
CandleHistory.candles_between) timed in this process against the same servers.
Measured `--repeats` times quiet and `--repeats` times with a second process loading the
machine (one busy-looping Python process this benchmark starts and stops), in alternation;
the figures are medians over the repetitions.
Goal: tool round-trip overhead p99 < 20 ms. The first-token overhead with tools enabled is
bench_chat_stream's figure (every request there carries the tool definitions).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.dialects.postgresql import insert

from bench._support import ask, chat_entry, chat_servers, cpu_load, load_average, pct, sign_up, stamped


# -- the fake model (subprocess) -----------------------------------------------------------------
async def run_fake(port: int) -> None:
    from tests.chat.fake_anthropic import FakeAnthropic, Recorded, Reply, ToolUseScript

    ids = itertools.count(1)

    class ToolFake(FakeAnthropic):
        stops: dict[str, float] = {}

        def reply_for(self, body: dict[str, Any]) -> Reply:
            arrived = time.perf_counter()
            last = body["messages"][-1]["content"]
            if isinstance(last, list):
                results = [b for b in last if b.get("type") == "tool_result"]
                gap = (arrived - self.stops.pop(results[0]["tool_use_id"])) * 1000
                return Reply(chunks=[f"{gap:.4f}|", " done."])
            since = (datetime.now(UTC) - timedelta(hours=24)).isoformat()
            call_id = f"toolu_bench_{next(ids)}"
            if "CANDLES" in last:
                script = ToolUseScript(
                    "get_candles", {"symbol": "BTC/USDT", "interval": "1h", "start": since}, id=call_id
                )
            else:
                script = ToolUseScript("get_price", {"symbols": ["BTC/USDT"]}, id=call_id)
            return Reply(chunks=[""], tool_calls=[script])

        async def _stream(self, record: Recorded, writer: Any, closed: Any) -> bool:
            sent = await super()._stream(record, writer, closed)
            for script in record.reply.tool_calls:
                self.stops[script.id or ""] = record.stop_sent_at
            return sent

    fake = ToolFake()
    await fake.start(port, backlog=4096)
    await asyncio.Event().wait()


# -- seeding and the raw calls (this process) ------------------------------------------------------
async def seed_and_time_raw(database_url: str, valkey_url: str, samples: int) -> dict[str, list[float]]:
    from sage.market.history import CandleHistory
    from sage.market.models import EXCHANGES, Ticker, ticker_to_json
    from sage.market.pipeline import ticker_key
    from sage.market.service import MarketService
    from sage.observability.metrics import Metrics
    from sage.settings import Settings
    from sage.store.cache_setup import build_cache
    from sage.store.db import Database, create_engine
    from sage.store.market_tables import CandleRow

    settings = Settings(
        database_url=database_url,
        valkey_url=valkey_url,
        data_dir=Path(tempfile.mkdtemp()),
        market_source="off",  # type: ignore[arg-type]
        jwt_secret="bench-secret-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        ticker_stale_seconds=86_400,
    )
    cache = build_cache(settings)
    db = Database(create_engine(settings, database_url))
    now = datetime.now(UTC)
    tickers = {}
    for exchange in EXCHANGES:
        for symbol, price in (("BTC/USDT", "97250.5"), ("ETH/USDT", "3456.78")):
            p = Decimal(price)
            tickers[ticker_key(cache, exchange, symbol)] = ticker_to_json(
                Ticker(exchange, symbol, p, p, p, Decimal("1.2"), p, p, Decimal(10), Decimal(10) * p, now, now)
            )
    await cache.backend.set_many(tickers, 86_400)
    start = now.replace(second=0, microsecond=0) - timedelta(days=7)
    rows = []
    for minute in range(7 * 24 * 60):
        level = Decimal(90_000 + minute % 500)
        rows.append(
            {
                "exchange": "binance",
                "symbol": "BTC/USDT",
                "start": start + timedelta(minutes=minute),
                "open": level,
                "high": level + 5,
                "low": level - 5,
                "close": level + 1,
                "volume": Decimal("0.5"),
                "ticks": 4,
            }
        )
    async with db.session() as session:
        for i in range(0, len(rows), 2000):
            await session.execute(insert(CandleRow).values(rows[i : i + 2000]).on_conflict_do_nothing())
        await session.commit()
    market = MarketService(settings, cache, db, Metrics())
    candles = CandleHistory(db, market.exchanges)
    raw: dict[str, list[float]] = {"get_price": [], "get_candles": []}
    for _ in range(samples):
        t = time.perf_counter()
        await market.consolidated(["BTC/USDT"])
        raw["get_price"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        end = datetime.now(UTC)
        await candles.candles_between("BTC/USDT", interval="1h", start=end - timedelta(hours=24), end=end, limit=200)
        raw["get_candles"].append((time.perf_counter() - t) * 1000)
    await db.dispose()
    await cache.close()
    return raw


# -- the client ----------------------------------------------------------------------------------------
async def tool_round_trips(base: str, tool: str, requests: int) -> tuple[list[float], list[float]]:
    """(round-trip overhead as the fake measured it, the tool's own duration as Sage reported it)."""
    overhead: list[float] = []
    inside: list[float] = []
    word = "CANDLES" if tool == "get_candles" else "PRICE"
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        headers = await sign_up(client, f"bench-{tool}@example.com")
        for i in range(requests):
            async for event, data in ask(client, headers, f"{word} {i}"):
                if event == "tool":
                    if data["is_error"]:
                        raise RuntimeError(f"{tool} failed: {data['summary']}")
                    inside.append(float(data["duration_ms"]))
                elif event == "delta" and (gap := stamped(data["text"])) is not None:
                    overhead.append(gap)
    return overhead, inside


@dataclass
class Sample:
    overhead: list[float]  # tool_use stop -> tool_result upstream, as the fake measured it
    inside: list[float]  # the tool's own duration, as Sage reported it
    load: str


Run = dict[str, Sample]  # tool -> its figures in one run


def _report(label: str, runs: list[Run], raw: dict[str, list[float]]) -> None:
    print(f"  {label} (median of {len(runs)} runs; {'; '.join(r['get_price'].load for r in runs)}):")
    for tool in ("get_price", "get_candles"):
        over50 = statistics.median(pct(r[tool].overhead, 0.5) for r in runs)
        over99 = statistics.median(pct(r[tool].overhead, 0.99) for r in runs)
        in50 = statistics.median(pct(r[tool].inside, 0.5) for r in runs)
        in99 = statistics.median(pct(r[tool].inside, 0.99) for r in runs)
        print(
            f"    {tool:11s} tool_use stop -> tool_result upstream: p50 {over50:6.2f} ms  p99 {over99:6.2f} ms"
            f"   (tool inside Sage: p50 {in50:5.2f} ms, p99 {in99:5.2f} ms)"
        )
        print(
            f"    {'':11s} baseline, raw service call here:      p50 {pct(raw[tool], 0.5):6.2f} ms  "
            f"p99 {pct(raw[tool], 0.99):6.2f} ms   -> goal p99 < 20 ms: {'met' if over99 < 20 else 'NOT met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    raw: dict[str, list[float]] = {}

    def seed(db_url: str, valkey_url: str) -> None:
        raw.update(asyncio.run(seed_and_time_raw(db_url, valkey_url, args.requests)))

    with chat_servers("bench.bench_chat_tools", before=seed) as servers:
        base = servers.sage_urls[0]
        asyncio.run(tool_round_trips(base, "get_price", 20))  # warm-up
        quiet: list[Run] = []
        loaded: list[Run] = []
        for _ in range(args.repeats):
            for runs, load in ((quiet, False), (loaded, True)):
                run: Run = {}
                with cpu_load(1 if load else 0):
                    for tool in ("get_price", "get_candles"):
                        overhead, inside = asyncio.run(tool_round_trips(base, tool, args.requests))
                        run[tool] = Sample(overhead, inside, load_average())
                runs.append(run)
        print(
            f"Tool round trip on loopback, {args.requests} answers per tool x {args.repeats} runs per condition, "
            "3 processes (fake model, Sage, client)"
        )
        _report("quiet (no load of our own)", quiet, raw)
        _report("loaded (+1 busy-looping process)", loaded, raw)


if __name__ == "__main__":
    chat_entry("bench.bench_chat_tools", run_fake, main)
