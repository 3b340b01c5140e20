"""Market pipeline benchmarks; every figure printed beside a baseline measured in the same run.

1. Throughput, per exchange format: frames per second through parse -> normalize ->
   store (the pipeline's guard, coalescing, candles, wire encoding and the batched
   cache write + publish), beside plain `orjson.loads` of the same frames.
   Goal: the pipeline at >= 50 % of raw parse speed. Measured twice: with the
   in-process cache (our CPU cost alone) and with Valkey on 127.0.0.1.
2. Tick-to-Valkey latency at 5,000 messages/s: a local Binance-protocol server (its
   own process) sends combined-stream tickers at 5,000 msg/s; this process runs the
   real ingestion path (websockets runner -> parser -> pipeline -> Valkey); a third
   process subscribed to the Valkey channel timestamps each update. Latency is from the
   server's send to the subscriber's receipt (CLOCK_MONOTONIC is shared by processes).
   Baseline: the same message rate PUBLISHed straight to Valkey, one message each.
   Goal: P99 < 50 ms.

Run: .venv/bin/python bench/bench_market_pipeline.py [--frames N] [--seconds S]
Valkey: VALKEY_URL, else a throwaway valkey-server/redis-server on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SYMBOLS6 = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT", "DOGE/USDT"]
LATENCY_SYMBOLS = [f"C{i}/USDT" for i in range(50)]
RATE = 5_000
BASE_MS = 1_767_225_600_000


def binance_frame(symbol: str, price: str, event_ms: int) -> bytes:
    """A combined-stream `<symbol>@ticker` frame, built by the same fake the tests use."""
    from tests.market.fakes import binance_ticker

    s = symbol.replace("/", "")
    return orjson.dumps({"stream": s.lower() + "@ticker", "data": binance_ticker(s, price, event_ms)})


def gate_frame(symbol: str, price: str, event_ms: int) -> bytes:
    from tests.market.fakes import gate_ticker

    return orjson.dumps(gate_ticker(symbol.replace("/", "_"), price, event_ms))


def frames_for(exchange: str, n: int, offset: int) -> list[bytes]:
    make = binance_frame if exchange == "binance" else gate_frame
    return [make(SYMBOLS6[i % 6], f"{90000 + (i % 977)}.{i % 100:02d}", BASE_MS + offset + i) for i in range(n)]


# --- 1. throughput -------------------------------------------------------------------------------


def raw_seconds(frames: list[bytes]) -> float:
    gc.collect()
    started = time.perf_counter()
    for frame in frames:
        orjson.loads(frame)
    return time.perf_counter() - started


async def pipeline_seconds(exchange: str, frames: list[bytes], cache: Any) -> float:
    """One pass: a fresh pipeline (so the out-of-order guard accepts every frame)."""
    from sage.market.candles import CandleAggregator
    from sage.market.feeds.binance import BinanceFeed
    from sage.market.feeds.gateio import GateioFeed
    from sage.market.live import FeedFrameHandler
    from sage.market.pipeline import MarketPipeline
    from sage.observability.metrics import Metrics

    metrics = Metrics()
    pipeline = MarketPipeline(cache, metrics, queue_size=100_000, candles=CandleAggregator())
    feed: Any = (
        BinanceFeed(SYMBOLS6, base_url="ws://x") if exchange == "binance" else GateioFeed(SYMBOLS6, url="ws://x")
    )
    handler = FeedFrameHandler(feed, pipeline, metrics)
    gc.collect()
    started = time.perf_counter()
    received = time.time()
    for i, frame in enumerate(frames, 1):
        handler(frame, received)
        if i % 1000 == 0:  # a flush per 1 000 frames, as under load
            await pipeline.flush()
    await pipeline.flush()
    elapsed = time.perf_counter() - started
    assert pipeline.accepted == len(frames), (pipeline.accepted, handler.malformed)
    return elapsed


async def throughput(n: int, valkey_url: str, rounds: int) -> list[tuple[str, float, float, float]]:
    """Best of `rounds`, raw and pipeline runs interleaved so both see the same machine load."""
    from sage.store.cache import Cache
    from sage.store.cache_setup import create_backend

    memory_cache = Cache(create_backend(None))
    valkey_cache = Cache(create_backend(valkey_url), prefix="bench:")
    rows = []
    for exchange in ("binance", "gateio"):
        frames = frames_for(exchange, n, 0)
        raw = memory = valkey = float("inf")
        for _ in range(rounds):
            raw = min(raw, raw_seconds(frames))
            memory = min(memory, await pipeline_seconds(exchange, frames, memory_cache))
            valkey = min(valkey, await pipeline_seconds(exchange, frames, valkey_cache))
        rows.append((exchange, n / raw, n / memory, n / valkey))
    await valkey_cache.backend.delete(*await valkey_cache.backend.keys("bench:*"))
    await memory_cache.close()
    await valkey_cache.close()
    return rows


# --- 2. latency ---------------------------------------------------------------------------------


def sender_process(ready: Any, start: Any, results: Any, seconds: float, valkey_url: str) -> None:
    asyncio.run(_sender(ready, start, results, seconds, valkey_url))


async def _sender(ready: Any, start: Any, results: Any, seconds: float, valkey_url: str) -> None:
    import valkey.asyncio as valkey
    from websockets.asyncio.server import serve

    subscribed = asyncio.Event()
    connections: list[Any] = []

    async def handler(ws: Any) -> None:
        connections.append(ws)
        async for message in ws:
            body = orjson.loads(message)
            if body.get("method") == "SUBSCRIBE":
                await ws.send(orjson.dumps({"result": None, "id": body["id"]}))
                subscribed.set()

    server = await serve(handler, "127.0.0.1", 0, compression=None)
    port = next(iter(server.sockets)).getsockname()[1]
    ready.put(port)
    await subscribed.wait()
    await asyncio.get_running_loop().run_in_executor(None, start.wait)

    async def paced(send: Any, count: int) -> dict[int, float]:
        sent: dict[int, float] = {}
        began = time.monotonic()
        seq = 0
        while seq < count:
            due = min(count, int((time.monotonic() - began) * RATE) + 1)
            while seq < due:
                sent[seq] = time.monotonic()
                await send(seq)
                seq += 1
            await asyncio.sleep(0.001)
        return sent

    ws = connections[0]
    symbols = LATENCY_SYMBOLS

    async def send_ws(seq: int) -> None:
        await ws.send(binance_frame(symbols[seq % len(symbols)], f"{1000 + seq % 500}.25", BASE_MS + seq))

    total = int(seconds * RATE)
    await paced(send_ws, RATE)  # warm-up second, not measured
    ws_sent = await paced(lambda s: send_ws(s + RATE), total)
    await asyncio.sleep(1.0)

    client = valkey.Valkey.from_url(valkey_url)
    pipe_frame = binance_frame("BTC/USDT", "97000.25", BASE_MS)

    async def send_raw(seq: int) -> None:
        await client.publish("bench:raw", orjson.dumps({"seq": seq, "frame": pipe_frame.decode()}))

    raw_sent = await paced(send_raw, total)
    await client.aclose()
    results.put(({k + RATE: v for k, v in ws_sent.items()}, raw_sent))
    server.close()


def subscriber_process(ready: Any, results: Any, channel: str, valkey_url: str, expected: int) -> None:
    asyncio.run(_subscriber(ready, results, channel, valkey_url, expected))


async def _subscriber(ready: Any, results: Any, channel: str, valkey_url: str, expected: int) -> None:
    import valkey.asyncio as valkey

    client = valkey.Valkey.from_url(valkey_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel, "bench:raw")
    ready.put("ready")
    pipeline_seen: dict[int, float] = {}
    raw_seen: dict[int, float] = {}
    deadline = time.monotonic() + 600
    while len(raw_seen) < expected and time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is None:
            continue
        now = time.monotonic()
        body = orjson.loads(message["data"])
        if message["channel"] == b"bench:raw":
            raw_seen[body["seq"]] = now
        else:
            for wire in body["tickers"]:
                pipeline_seen.setdefault(wire["event_time"] - BASE_MS, now)
    await pubsub.aclose()
    await client.aclose()
    results.put((pipeline_seen, raw_seen))


def quantiles(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] * 1000

    return q(0.5), q(0.99), ordered[-1] * 1000


async def latency(seconds: float, valkey_url: str) -> dict[str, Any]:
    from sage.market.feeds.binance import BinanceFeed
    from sage.market.live import ExchangeFeedRunner, RunnerOptions
    from sage.market.pipeline import MarketPipeline, ticks_channel
    from sage.observability.metrics import Metrics
    from sage.store.cache import Cache
    from sage.store.cache_setup import create_backend

    ctx = mp.get_context("spawn")
    cache = Cache(create_backend(valkey_url), prefix="bench:")
    await cache.backend.delete(*await cache.backend.keys("bench:*"))
    total = int(seconds * RATE)
    sub_ready, sub_results = ctx.Queue(), ctx.Queue()
    subscriber = ctx.Process(
        target=subscriber_process, args=(sub_ready, sub_results, ticks_channel(cache), valkey_url, total)
    )
    subscriber.start()
    sub_ready.get(timeout=60)
    send_ready, send_start, send_results = ctx.Queue(), ctx.Event(), ctx.Queue()
    sender = ctx.Process(target=sender_process, args=(send_ready, send_start, send_results, seconds, valkey_url))
    sender.start()
    port = send_ready.get(timeout=60)

    metrics = Metrics()
    pipeline = MarketPipeline(cache, metrics, queue_size=100_000)
    feed = BinanceFeed(LATENCY_SYMBOLS, base_url=f"ws://127.0.0.1:{port}")
    runner = ExchangeFeedRunner(feed, pipeline, metrics, RunnerOptions(watchdog=60.0))
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(runner.run())]
    send_start.set()
    loop = asyncio.get_running_loop()
    ws_sent, raw_sent = await loop.run_in_executor(None, lambda: send_results.get(timeout=600))
    pipeline_seen, raw_seen = await loop.run_in_executor(None, lambda: sub_results.get(timeout=600))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    sender.join(30)
    subscriber.join(30)
    await cache.backend.delete(*await cache.backend.keys("bench:*"))
    await cache.close()
    measured = [pipeline_seen[seq] - sent for seq, sent in ws_sent.items() if seq in pipeline_seen]
    raw = [raw_seen[seq] - sent for seq, sent in raw_sent.items() if seq in raw_seen]
    return {
        "sent": len(ws_sent),
        "delivered": len(measured),
        "dropped": pipeline.dropped,
        "pipeline": quantiles(measured),
        "raw": quantiles(raw),
        "flushes": pipeline.flushes,
    }


# --- main ------------------------------------------------------------------------------------------


def valkey_for_bench() -> tuple[str, Any]:
    url = os.environ.get("VALKEY_URL")
    if url:
        return url, None
    from tests.support.servers import ValkeyProcess

    server = ValkeyProcess()
    server.start()
    return server.url, server


async def main(frames: int, seconds: float, rounds: int) -> None:
    url, server = valkey_for_bench()
    try:
        print(f"== parse -> normalize -> store throughput ({frames:,} frames per exchange, best of {rounds})")
        print(
            f"{'format':<10}{'orjson.loads':>16}{'pipeline(mem)':>16}{'ratio':>8}{'pipeline(valkey)':>19}{'ratio':>8}"
        )
        for exchange, raw, memory, valkey in await throughput(frames, url, rounds):
            print(
                f"{exchange:<10}{raw:>14,.0f}/s{memory:>14,.0f}/s{memory / raw:>8.0%}"
                f"{valkey:>17,.0f}/s{valkey / raw:>8.0%}"
            )
        print("   goal: pipeline >= 50% of raw orjson.loads")
        print()
        print(f"== tick-to-Valkey latency at {RATE:,} msg/s for {seconds:.0f} s (50 symbols, Binance combined stream)")
        result = await latency(seconds, url)
        p50, p99, worst = result["pipeline"]
        r50, r99, rworst = result["raw"]
        print(f"{'path':<44}{'P50':>9}{'P99':>9}{'max':>9}")
        print(f"{'WS -> runner -> parse -> pipeline -> Valkey':<44}{p50:>7.2f}ms{p99:>7.2f}ms{worst:>7.1f}ms")
        print(f"{'baseline: PUBLISH straight to Valkey':<44}{r50:>7.2f}ms{r99:>7.2f}ms{rworst:>7.1f}ms")
        print(
            f"   delivered {result['delivered']:,}/{result['sent']:,} updates in {result['flushes']:,} flushes"
            f" (dropped {result['dropped']}); goal: P99 < 50 ms"
        )
    finally:
        if server is not None:
            server.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # a reconnect log line when the sender stops is expected
    asyncio.run(main(args.frames, args.seconds, args.rounds))
