"""Alert benchmarks; every figure printed beside a baseline measured in the same run.

1. Tick -> alert fired -> notification on the user's open SSE stream, with 10,000 other
   alerts pending on 50 symbols, in the DEFAULT configuration (the checker woken by tick
   batches, full pass every SAGE_MARKET_ALERT_CHECK_SECONDS). Ticks go the ingestor's way:
   a `MarketPipeline` SETs the tickers in Valkey and PUBLISHes the batch; the other 49
   symbols tick every 100 ms meanwhile (below every alert), so passes keep running. Each
   round creates one alert just above the price, then ticks the price across it and times
   until the `notification` event arrives on an SSE stream open on the real app (uvicorn,
   real PostgreSQL and Valkey).
   Baseline, same ticks of the same run: tick -> Valkey (submitted to the pipeline ->
   the published batch read by a plain Valkey subscriber). Goal: p99 < 1 s.
2. The pass's statement (EXPLAIN ANALYZE) over those 10,000 alerts with every symbol ticked,
   beside the same statement with ix_market_alerts_crossing dropped (a rolled-back DROP).
3. Outbox throughput: 1,000 email deliveries through the delivery worker to a local SMTP
   server (aiosmtpd), per second, beside raw `aiosmtplib.send` of the same messages with the
   same concurrency.

Run: python -m bench.bench_alerts [--rounds N] [--emails N]
PostgreSQL / Valkey: DATABASE_URL / VALKEY_URL, else throwaway servers on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PENDING = 10_000
SYMBOLS = [f"C{i}/USDT" for i in range(50)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def row(name: str, values: list[float]) -> str:
    return f"{name:<48} p50 {pct(values, 0.5):8.2f} ms   p99 {pct(values, 0.99):8.2f} ms   max {max(values):8.2f} ms"


def ticker(symbol: str, price: Decimal) -> Any:
    from sage.market.models import Ticker

    now = datetime.now(UTC)
    one = Decimal(1)
    return Ticker("binance", symbol, price, price, price, Decimal(0), price + one, price - one, one, price, now, now)


async def tick_to_stream(db_url: str, valkey_url: str, rounds: int, data_dir: Path) -> tuple[list[float], list[float]]:
    """(tick -> SSE notification, tick -> Valkey subscriber) per round, in ms."""
    import valkey.asyncio as valkey
    from sqlalchemy import text

    from sage.market.pipeline import MarketPipeline, ticks_channel
    from sage.observability.metrics import Metrics
    from sage.settings import Settings
    from sage.store.cache_setup import build_cache
    from tests.chat.support import SSEEvent, iter_sse, register, start_live_server

    settings = Settings(  # the alert checker at its defaults: woken by ticks, full pass every 15 s
        env="development",
        data_dir=data_dir,
        market_source="off",
        llm_provider="offline",
        metrics_emf=False,
        log_level="WARNING",
        database_url=db_url,
        valkey_url=valkey_url,
        symbols=SYMBOLS,
        sse_keepalive_seconds=30,
        jwt_secret="bench-secret-that-is-long-enough-for-hs256-0123456789",
    )
    defaults = Settings.model_fields["market_alert_check_seconds"].default
    assert settings.market_alert_check_seconds == defaults, "the benchmark runs the default configuration"
    # The ingestor's publishing half, as the ingestor runs it: SET the tickers, PUBLISH the batch.
    cache = build_cache(settings)
    pipeline = MarketPipeline(cache, Metrics())
    for symbol in SYMBOLS:
        pipeline.submit(ticker(symbol, Decimal(100)))
    await pipeline.flush()
    # The baseline's subscriber: when the same tick reaches a Valkey subscriber.
    subscriber = valkey.from_url(valkey_url)
    pubsub = subscriber.pubsub()
    await pubsub.subscribe(ticks_channel(cache))
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    seen: dict[tuple[str, Decimal], float] = {}
    arrived = asyncio.Event()

    async def listen() -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message is None:
                continue
            at = time.perf_counter()
            for wire in orjson.loads(message["data"])["tickers"]:
                seen.setdefault((wire["symbol"], Decimal(wire["last"])), at)
            arrived.set()

    measured: set[str] = set()

    async def market_noise() -> None:
        """Every other symbol ticks every 100 ms, below every alert: passes evaluate them too."""
        rng = random.Random(7)
        while True:
            for symbol in SYMBOLS:
                if symbol not in measured:
                    pipeline.submit(ticker(symbol, Decimal(100) + Decimal(rng.randint(-50, 50)) / 100))
            await pipeline.flush()
            await asyncio.sleep(0.1)

    server = await start_live_server(settings)
    background = [asyncio.create_task(listen()), asyncio.create_task(market_noise())]
    stream: list[float] = []
    baseline: list[float] = []
    try:
        async with server.client() as client:
            headers = await register(client)
            others = uuid.uuid4()  # 10,000 pending alerts of other users on 50 symbols, armed
            async with server.runtime.db.session() as session:
                await session.execute(
                    text("INSERT INTO users (id, email, password_hash) VALUES (:u, 'others@example.com', 'x')"),
                    {"u": others},
                )
                await session.execute(
                    text(
                        "INSERT INTO market_alerts (id, user_id, kind, symbol, threshold, status, armed)"
                        " SELECT gen_random_uuid(), CAST(:u AS uuid), 'price_above', 'C' || (g % 50) || '/USDT',"
                        " 1000 + g, 'active', true FROM generate_series(1, :n) AS g"
                    ),
                    {"u": others, "n": PENDING},
                )
                await session.execute(text("ANALYZE market_alerts"))
                await session.commit()
            async with client.stream("GET", "/api/v1/notifications/stream", headers=headers) as response:
                events = iter_sse(response)
                for i in range(rounds):
                    symbol = SYMBOLS[i % len(SYMBOLS)]
                    measured.add(symbol)
                    pipeline.submit(ticker(symbol, Decimal(100)))
                    await pipeline.flush()
                    created = await client.post(
                        "/api/v1/alerts",
                        json={"kind": "price_above", "symbol": symbol, "threshold": "101"},
                        headers=headers,
                    )
                    assert created.status_code == 201 and not created.json()["already_triggered"], created.text
                    await asyncio.sleep(0.3)  # not right behind the previous round's pass
                    price = Decimal(102) + Decimal(i) / 1000  # unique per round, so its arrival is known
                    start = time.perf_counter()
                    pipeline.submit(ticker(symbol, price))  # the tick
                    await pipeline.flush()
                    async with asyncio.timeout(30):
                        async for item in events:
                            if isinstance(item, SSEEvent) and item.event == "notification":
                                break
                    stream.append((time.perf_counter() - start) * 1000)
                    while (symbol, price) not in seen:  # the subscriber may not have read it yet
                        arrived.clear()
                        await arrived.wait()
                    baseline.append((seen[(symbol, price)] - start) * 1000)
                    await client.delete(f"/api/v1/alerts/{created.json()['id']}", headers=headers)
                    measured.discard(symbol)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await server.stop()
        await pubsub.aclose()
        await subscriber.aclose()
        await cache.close()
    return stream, baseline


async def explain_pass(db_url: str) -> tuple[float, float, list[str]]:
    """EXPLAIN ANALYZE of a tick pass's statement over the 10,000 pending alerts left by the
    latency run, every symbol ticked at 100 (nothing crosses): (execution ms with
    ix_market_alerts_crossing, execution ms with it dropped in a rolled-back transaction, the
    indexes in its plan)."""
    import json

    from sqlalchemy import text

    from sage.alerts.evaluation import _EVALUATE, _SPANS
    from sage.settings import Settings
    from sage.store.db import Database, create_engine

    settings = Settings(env="development", market_source="off", llm_provider="offline", database_url=db_url)
    db = Database(create_engine(settings, db_url))
    params = {
        "price_symbols": SYMBOLS,
        "price_values": [Decimal(100)] * len(SYMBOLS),
        "spans": _SPANS,
        "fng": None,
        "portfolio_ids": [],
        "portfolio_values": [],
    }
    explain = text("EXPLAIN (ANALYZE, FORMAT JSON) " + str(_EVALUATE.text))

    def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(n for child in node.get("Plans", []) for n in walk(child))]

    async def run(drop: bool) -> tuple[float, list[str]]:
        best, indexes = float("inf"), []
        async with db.session() as session:
            if drop:
                await session.execute(text("DROP INDEX ix_market_alerts_crossing"))
            for _ in range(5):  # the best of five: the machine is shared
                raw = await session.scalar(explain, params)
                plan = (raw if isinstance(raw, list) else json.loads(raw))[0]
                best = min(best, float(plan["Execution Time"]))
                indexes = sorted({n["Index Name"] for n in walk(plan["Plan"]) if "Index Name" in n})
            await session.rollback()  # EXPLAIN ANALYZE ran the UPDATE (nothing changed), and the DROP
        return best, indexes

    try:
        with_index, indexes = await run(drop=False)
        without, _ = await run(drop=True)
        return with_index, without, indexes
    finally:
        await db.dispose()


async def outbox_throughput(db_url: str, port: int, emails: int, concurrency: int) -> tuple[float, float]:
    from sqlalchemy import text

    from sage.notifications.delivery import DeliveryWorker, RetryPolicy
    from sage.notifications.email import EmailSender, SmtpConfig, SmtpMailer, compose
    from sage.observability.metrics import Metrics
    from sage.settings import Settings
    from sage.store.db import Database, create_engine

    settings = Settings(env="development", market_source="off", llm_provider="offline", database_url=db_url)
    db = Database(create_engine(settings, db_url, pool_size=concurrency + 2))
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=port, sender="bench@sage.test", starttls=False))
    try:
        # Baseline: the same number of messages straight through aiosmtplib, same concurrency.
        slots = asyncio.Semaphore(concurrency)

        async def raw(i: int) -> None:
            async with slots:
                await mailer.deliver(
                    compose(
                        sender="bench@sage.test",
                        to=f"raw{i}@example.com",
                        subject="Alert",
                        text_body="x",
                        html_body="<p>x</p>",
                    )
                )

        start = time.perf_counter()
        await asyncio.gather(*(raw(i) for i in range(emails)))
        raw_rate = emails / (time.perf_counter() - start)

        user = uuid.uuid4()
        async with db.session() as session:
            await session.execute(
                text("INSERT INTO users (id, email, password_hash) VALUES (:u, 'bench@example.com', 'x')"), {"u": user}
            )
            await session.execute(
                text(
                    "INSERT INTO notification_settings (user_id, email, verified_email) VALUES (:u, true, 'bench@example.com')"
                ),
                {"u": user},
            )
            await session.execute(
                text(
                    "WITH n AS (INSERT INTO notifications (user_id, kind, title, body, data)"
                    " SELECT :u, 'alert', 'Alert: C1/USDT above 101', 'C1/USDT above 101: now 102.', '{}'"
                    " FROM generate_series(1, :n) RETURNING id)"
                    " INSERT INTO notification_deliveries (notification_id, user_id, channel, status)"
                    " SELECT id, :u, 'email', 'pending' FROM n"
                ),
                {"u": user, "n": emails},
            )
            await session.commit()
        worker = DeliveryWorker(
            db,
            {"email": EmailSender(mailer, inbox_url="http://127.0.0.1:3000")},
            Metrics(),
            policy=RetryPolicy(),
            batch_size=100,
            concurrency=concurrency,
        )
        start = time.perf_counter()
        claimed = await worker.drain()
        outbox_rate = emails / (time.perf_counter() - start)
        async with db.session() as session:
            sent = await session.scalar(text("SELECT count(*) FROM notification_deliveries WHERE status = 'sent'"))
        assert claimed == emails and sent == emails, (claimed, sent)
        return outbox_rate, raw_rate
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import tempfile

    from bench._support import stores
    from tests.support.servers import free_port, wait_for_port

    with stores() as urls:
        db_url, valkey_url = urls.database_url, urls.valkey_url
        with tempfile.TemporaryDirectory() as data_dir:
            stream, baseline = asyncio.run(tick_to_stream(db_url, valkey_url, args.rounds, Path(data_dir)))
        with_index, without_index, indexes = asyncio.run(explain_pass(db_url))
        # The SMTP sink runs in its own process, so it does not share a GIL with what is measured.
        port = free_port()
        smtp = subprocess.Popen([sys.executable, "-m", "bench.bench_alerts", "_smtp", str(port)])
        try:
            wait_for_port(port, 60)
            outbox, raw = asyncio.run(outbox_throughput(db_url, port, args.emails, args.concurrency))
        finally:
            smtp.terminate()
            smtp.wait(30)
        print(f"\nTick -> alert -> SSE, {PENDING:,} pending alerts on {len(SYMBOLS)} symbols, {args.rounds} rounds,")
        print("default settings (checker woken by tick batches):")
        print("  " + row("tick -> notification on the SSE stream", stream))
        print("  " + row("baseline: tick -> Valkey (pipeline -> subscriber)", baseline))
        ratio = pct(stream, 0.99) / pct(baseline, 0.99) if pct(baseline, 0.99) else float("inf")
        print(f"  p99 ratio to the baseline: {ratio:.1f}x")
        print(f"  goal p99 < 1000 ms: {'met' if pct(stream, 0.99) < 1000 else 'NOT met'}")
        print(
            f"\nThe pass's statement, {PENDING:,} alerts, 50 symbols ticked, nothing crossed (EXPLAIN ANALYZE, best of 5):"
        )
        print(f"  with ix_market_alerts_crossing: {with_index:8.2f} ms   (indexes in the plan: {', '.join(indexes)})")
        print(f"  baseline: the index dropped   : {without_index:8.2f} ms   ({without_index / with_index:.0f}x)")
        print(f"\nOutbox, {args.emails:,} emails to a local SMTP server, concurrency {args.concurrency}:")
        print(f"  delivery worker (claim, send, mark sent): {outbox:8.0f} emails/s")
        print(f"  baseline: raw aiosmtplib.send           : {raw:8.0f} emails/s   ({outbox / raw * 100:.0f} %)")


def serve_smtp(port: int) -> None:
    """A sink SMTP server (aiosmtpd) for the throughput figures."""
    import threading

    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 Message accepted"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    threading.Event().wait()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_smtp":
        serve_smtp(int(sys.argv[2]))
    else:
        main()
