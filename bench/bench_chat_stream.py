"""Chat streaming: the overhead Sage adds to a model's first token, and how many streams one process holds.

    .venv/bin/python -m bench.bench_chat_stream [--requests 300] [--repeats 3] [--streams 1000]

Three processes on loopback, so no two share a GIL: the fake Anthropic API
(tests/chat/fake_anthropic.py, the real streaming wire protocol), one Sage server
(`sage serve`'s uvicorn options, real PostgreSQL and Valkey), and this client. Sage runs
with its defaults, so every model request carries the tool definitions and the
prompt-cached instructions (issue 16); the tool round trip is bench_chat_tools' figure.

1. Stream overhead. The fake writes its send time (a monotonic clock every process on the
   machine shares) into the first text delta. The client reads the first `delta` event and
   subtracts: fake first token -> Sage (SDK, answer task, buffer) -> client. Baseline in the
   same run: a bare httpx client reading the fake's own stream, the same stamp, no Sage.
   Measured `--repeats` times quiet and `--repeats` times with a second process loading
   the machine (one busy-looping Python process this benchmark starts and stops), in
   alternation; the figures are the medians over the repetitions.
   Goal (issues 16 and 19): p99 < 5 ms, loaded.
2. Concurrent streams. The fake sends one token, then holds every stream open (a slow
   model). Against a second, fresh Sage process the client opens `--streams` answers in
   waves of 50 and waits for each one's first delta. That process's RSS at start, at half
   and with all streams open gives memory per stream: marginal (half -> all) and an upper
   bound (all growth since start over the streams). `--streams 0` skips it.
   Goal: >= 1,000 streams within 1 GB (the ECS task's memory).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench._support import (
    ask,
    chat_entry,
    chat_servers,
    cpu_load,
    load_average,
    pct,
    sign_up,
    sse_events,
    stamped,
)

HOLD = "HOLD"


# -- the fake model (subprocess) -----------------------------------------------------------------
async def run_fake(port: int) -> None:
    from tests.chat.fake_anthropic import FakeAnthropic, Recorded, Reply

    answer = Reply(chunks=["stamp", " then", " the", " rest."], first_token_delay=0.005)
    slow = Reply(chunks=["stamp", " never", " finished"], first_token_delay=0.005, hold_after_chunks=1)

    class StampingFake(FakeAnthropic):
        def reply_for(self, body: dict[str, Any]) -> Reply:
            return slow if HOLD in str(body.get("messages", [{}])[-1].get("content", "")) else answer

        def chunk_text(self, record: Recorded, index: int, text: str) -> str:
            return f"{time.perf_counter():.9f}|" if index == 0 else text

    fake = StampingFake()
    await fake.start(port, backlog=4096)
    await asyncio.Event().wait()


# -- the client ----------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def first_delta_latency(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> float:
    """ms from the fake's stamp to this client reading the first delta; then drains the stream."""
    latency = float("nan")
    async for event, data in events:
        if latency != latency:
            text = data.get("text") if event == "delta" else (data.get("delta") or {}).get("text")
            stamp = stamped(text) if text else None
            if stamp is not None:
                latency = (time.perf_counter() - stamp) * 1000
    return latency


async def _direct(client: httpx.AsyncClient) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    async with client.stream("POST", "/v1/messages", json=BASELINE_BODY) as response:
        async for item in sse_events(response):
            yield item


BASELINE_BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "baseline"}],
}


async def overhead(base: str, fake_url: str, headers: dict[str, str], requests: int) -> tuple[list[float], list[float]]:
    """Baseline and Sage samples interleaved, so load from elsewhere on the machine hits both alike."""
    base_ms: list[float] = []
    sage_ms: list[float] = []
    async with (
        httpx.AsyncClient(base_url=fake_url, timeout=30) as direct,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        for i in range(requests):
            base_ms.append(await first_delta_latency(_direct(direct)))
            sage_ms.append(await first_delta_latency(ask(client, headers, f"question {i}")))
    return base_ms, sage_ms


async def hold_streams(base: str, headers: dict[str, str], count: int, sage_pid: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        chats = [(await client.post("/api/v1/chats", json={}, headers=headers)).json()["id"] for _ in range(count)]
        opened: list[Any] = []
        streaming = 0
        failures = 0

        async def open_one(chat_id: str) -> None:
            nonlocal streaming, failures
            cm = client.stream(
                "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": f"{HOLD} {chat_id}"}, headers=headers
            )
            response = await cm.__aenter__()
            # keep the line iterator too: an abandoned one is closed by the garbage
            # collector, which closes the response, which (rightly) cancels the answer
            lines = response.aiter_lines()
            opened.append((cm, lines))
            if response.status_code != 200:
                failures += 1
                return
            async for line in lines:
                if line == "event: delta":
                    streaming += 1
                    break

        await asyncio.sleep(1)
        idle = rss_mb(sage_pid)
        half = idle
        started = time.perf_counter()
        for wave in range(0, count, 50):
            await asyncio.gather(*(open_one(c) for c in chats[wave : wave + 50]))
            if wave + 50 == count // 2:
                await asyncio.sleep(1)
                half = rss_mb(sage_pid)
        ramp = time.perf_counter() - started
        await asyncio.sleep(3)
        full = rss_mb(sage_pid)
        for cm, _ in opened:
            await cm.__aexit__(None, None, None)
    return {"idle": idle, "half": half, "full": full, "streaming": streaming, "failures": failures, "ramp": ramp}


def _row(label: str, runs: list[tuple[list[float], list[float], str]]) -> tuple[float, float]:
    """Print one condition's repetitions and their medians; (median p50, median p99) of Sage."""
    for n, (base_ms, sage_ms, load) in enumerate(runs, start=1):
        print(
            f"    run {n}: baseline p50 {pct(base_ms, 0.5):5.2f} p99 {pct(base_ms, 0.99):6.2f} ms | "
            f"sage p50 {pct(sage_ms, 0.5):5.2f} p99 {pct(sage_ms, 0.99):6.2f} ms | {load}"
        )
    base50 = statistics.median(pct(b, 0.5) for b, _, _ in runs)
    base99 = statistics.median(pct(b, 0.99) for b, _, _ in runs)
    sage50 = statistics.median(pct(s, 0.5) for _, s, _ in runs)
    sage99 = statistics.median(pct(s, 0.99) for _, s, _ in runs)
    print(f"  {label} (median of {len(runs)} runs):")
    print(f"    baseline: fake model -> httpx client     p50 {base50:6.2f} ms   p99 {base99:6.2f} ms")
    print(
        f"    sage:     fake model -> Sage -> client   p50 {sage50:6.2f} ms   p99 {sage99:6.2f} ms   "
        f"(added p50 {sage50 - base50:+.2f} ms, p99 {sage99 - base99:+.2f} ms; "
        f"ratio p99 {sage99 / max(base99, 1e-9):.1f}x)"
    )
    return sage50, sage99


async def measure_overhead(base: str, fake_url: str, requests: int, repeats: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        headers = await sign_up(client, "bench@example.com")
    await overhead(base, fake_url, headers, 30)  # warm-up: connections, pools, code paths
    quiet: list[tuple[list[float], list[float], str]] = []
    loaded: list[tuple[list[float], list[float], str]] = []
    for _ in range(repeats):
        base_ms, sage_ms = await overhead(base, fake_url, headers, requests)
        quiet.append((base_ms, sage_ms, load_average()))
        with cpu_load():
            base_ms, sage_ms = await overhead(base, fake_url, headers, requests)
            loaded.append((base_ms, sage_ms, load_average()))
    print(
        f"Chat first-token overhead on loopback, {requests} answers x {repeats} runs per condition, "
        "3 processes (fake model, Sage, client); tools enabled"
    )
    _, quiet99 = _row("quiet (no load of our own)", quiet)
    _, loaded99 = _row("loaded (+1 busy-looping process)", loaded)
    print(
        f"  -> goal p99 < 5 ms: quiet {'met' if quiet99 < 5 else 'NOT met'} ({quiet99:.2f} ms), "
        f"loaded {'met' if loaded99 < 5 else 'NOT met'} ({loaded99:.2f} ms)"
    )


async def measure_streams(hold_base: str, hold_pid: int, streams: int) -> None:
    start_rss = rss_mb(hold_pid)
    async with httpx.AsyncClient(base_url=hold_base, timeout=60) as client:
        headers = await sign_up(client, "bench@example.com")
    held = await hold_streams(hold_base, headers, streams, hold_pid)
    marginal_kb = (held["full"] - held["half"]) * 1024 / max(1, held["streaming"] / 2)
    overall_kb = (held["full"] - start_rss) * 1024 / max(1, held["streaming"])
    print("Concurrent streams with a slow model (one token, then held open), one fresh Sage process:")
    print(
        f"  {int(held['streaming'])}/{streams} streaming, {int(held['failures'])} refused, opened in {held['ramp']:.1f} s "
        f"(waves of 50); server RSS {start_rss:.0f} MB at start, {held['idle']:.0f} MB after sign-up and "
        f"{streams:,} chats, {held['half']:.0f} MB at {streams // 2} streams, {held['full']:.0f} MB at {streams}"
    )
    print(
        f"  memory per stream: {marginal_kb:.0f} KB marginal (half -> all open), "
        f"{overall_kb:.0f} KB counting all growth since the process started (upper bound)"
    )
    per_stream = max(marginal_kb, overall_kb)
    fits = int((1024 - start_rss) * 1024 / per_stream) if per_stream > 0 else 0
    met = held["streaming"] >= 1000 and held["full"] < 1024
    print(
        f"  -> goal >= 1,000 streams in 1 GB: {'met' if met else 'NOT met'}; at the larger rate ~{fits:,} fit in 1 GB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    with chat_servers("bench.bench_chat_stream", sages=2 if args.streams else 1) as servers:
        asyncio.run(measure_overhead(servers.sage_urls[0], servers.fake_url, args.requests, args.repeats))
        if args.streams:  # the holding process has been idle so far: its RSS is still the start's
            asyncio.run(measure_streams(servers.sage_urls[1], servers.sage_pids[1], args.streams))


if __name__ == "__main__":
    chat_entry("bench.bench_chat_stream", run_fake, main)
