"""Chat tool use: the overhead of one tool round trip, next to the raw service call it makes.

    .venv/bin/python -m bench.bench_chat_tools [--requests 200]

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
Goal: tool round-trip overhead p99 < 20 ms. The first-token overhead with tools enabled is
bench_chat_stream's figure (every request there carries the tool definitions).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.dialects.postgresql import insert

from bench.bench_chat_stream import pct
from tests.support.servers import PostgresProcess, ValkeyProcess, free_port, wait_for_port


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
        price = Decimal(90_000 + minute % 500)
        rows.append(
            {
                "exchange": "binance",
                "symbol": "BTC/USDT",
                "start": start + timedelta(minutes=minute),
                "open": price,
                "high": price + 5,
                "low": price - 5,
                "close": price + 1,
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
        creds = {"email": f"bench-{tool}@example.com", "password": "bench-password"}
        await client.post("/api/v1/auth/register", json=creds)
        token = (await client.post("/api/v1/auth/login", json=creds)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(requests):
            chat = (await client.post("/api/v1/chats", json={}, headers=headers)).json()["id"]
            event = ""
            async with client.stream(
                "POST", f"/api/v1/chats/{chat}/messages", json={"content": f"{word} {i}"}, headers=headers
            ) as response:
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = orjson.loads(line[6:])
                        if event == "tool":
                            if data["is_error"]:
                                raise RuntimeError(f"{tool} failed: {data['summary']}")
                            inside.append(float(data["duration_ms"]))
                        elif event == "delta" and "|" in data["text"]:
                            overhead.append(float(data["text"].split("|")[0]))
    return overhead, inside


def main(requests: int) -> None:
    from sage.ops import schema

    servers: list[Any] = []
    procs: list[subprocess.Popen[bytes]] = []
    db_url = os.environ.get("DATABASE_URL")
    valkey_url = os.environ.get("VALKEY_URL")
    try:
        if not db_url:
            pg = PostgresProcess()
            pg.start()
            servers.append(pg)
            db_url = pg.url
        if not valkey_url:
            vk = ValkeyProcess()
            vk.start()
            servers.append(vk)
            valkey_url = vk.url
        schema.upgrade_sync(db_url)
        raw = asyncio.run(seed_and_time_raw(db_url, valkey_url, requests))
        fake_port, sage_port = free_port(), free_port()
        fake_url = f"http://127.0.0.1:{fake_port}"
        me = [sys.executable, "-m", "bench.bench_chat_tools"]
        procs.append(subprocess.Popen([*me, "_fake", str(fake_port)]))
        procs.append(subprocess.Popen([*me, "_serve", str(sage_port), db_url, valkey_url, fake_url]))
        for port in (fake_port, sage_port):
            wait_for_port(port, 120)
        base = f"http://127.0.0.1:{sage_port}"
        asyncio.run(tool_round_trips(base, "get_price", 20))  # warm-up
        print(f"Tool round trip on loopback, {requests} answers per tool, 3 processes (fake model, Sage, client)")
        for tool in ("get_price", "get_candles"):
            overhead, inside = asyncio.run(tool_round_trips(base, tool, requests))
            print(
                f"  {tool:11s} tool_use stop -> tool_result upstream: p50 {pct(overhead, 0.5):6.2f} ms  "
                f"p99 {pct(overhead, 0.99):6.2f} ms   (tool inside Sage: p50 {pct(inside, 0.5):5.2f} ms, "
                f"p99 {pct(inside, 0.99):5.2f} ms)"
            )
            print(
                f"  {'':11s} baseline, raw service call here:      p50 {pct(raw[tool], 0.5):6.2f} ms  "
                f"p99 {pct(raw[tool], 0.99):6.2f} ms   -> goal p99 < 20 ms: "
                f"{'met' if pct(overhead, 0.99) < 20 else 'NOT met'}"
            )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in servers:
            server.destroy()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_fake":
        asyncio.run(run_fake(int(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "_serve":
        from bench.bench_chat_stream import run_sage

        run_sage(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
        parser.add_argument("--requests", type=int, default=200)
        args = parser.parse_args()
        main(args.requests)
