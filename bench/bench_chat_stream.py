"""Chat streaming: the overhead Sage adds to a model's first token, and how many streams one process holds.

    .venv/bin/python -m bench.bench_chat_stream [--requests 300] [--streams 1000]

Three processes on loopback, so no two share a GIL: the fake Anthropic API
(tests/chat/fake_anthropic.py, the real streaming wire protocol), one Sage server
(`sage serve`'s uvicorn options, real PostgreSQL and Valkey), and this client. Sage runs
with its defaults, so every model request carries the tool definitions and the
prompt-cached instructions (issue 16); the tool round trip is bench_chat_tools' figure.

1. Stream overhead. The fake writes its send time (a monotonic clock every process on the
   machine shares) into the first text delta. The client reads the first `delta` event and
   subtracts: fake first token -> Sage (SDK, answer task, buffer) -> client. Baseline in the
   same run: a bare httpx client reading the fake's own stream, the same stamp, no Sage.
   Goal: P99 < 5 ms.
2. Concurrent streams. The fake sends one token, then holds every stream open (a slow
   model). Against a second, fresh Sage process the client opens `--streams` answers in
   waves of 50 and waits for each one's first delta. That process's RSS at start, at half
   and with all streams open gives memory per stream: marginal (half -> all) and an upper
   bound (all growth since start over the streams).
   Goal: >= 1,000 streams within 1 GB (the ECS task's memory).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.servers import PostgresProcess, ValkeyProcess, free_port, wait_for_port

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


# -- the Sage server (subprocess) ---------------------------------------------------------------
class _ExtrasFormatter(logging.Formatter):
    """Warnings with their structured fields (operation, error, ...), prefixed so they stand out."""

    def format(self, record: logging.LogRecord) -> str:
        skip = set(vars(logging.makeLogRecord({}))) | {"message", "color_message"}
        extras = {k: v for k, v in vars(record).items() if k not in skip}
        return f"[sage server] {record.levelname} {record.getMessage()} {extras}"


def run_sage(port: int, database_url: str, valkey_url: str, fake_url: str) -> None:
    import uvicorn

    from sage.app import create_app
    from sage.serving import uvicorn_options
    from sage.settings import Settings

    settings = Settings(
        database_url=database_url,
        valkey_url=valkey_url,
        data_dir=Path(tempfile.mkdtemp()),
        market_source="off",  # type: ignore[arg-type]
        jwt_secret="bench-secret-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        log_level="WARNING",
        llm_provider="anthropic",  # type: ignore[arg-type]
        anthropic_api_key="sk-bench-not-real",  # type: ignore[arg-type]
        anthropic_base_url=fake_url,
        llm_max_concurrency=5000,
        llm_queue_size=0,
        chat_rate_per_minute=1_000_000,
        chat_daily_token_budget=10**12,
        db_pool_timeout_seconds=120,
        auth_rate_limit_per_ip=10_000,
        metrics_prometheus=False,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(_ExtrasFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    options = uvicorn_options(settings)
    options["log_level"] = "warning"
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, backlog=4096, **options)


# -- the client ----------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def first_delta_latency(response: httpx.Response) -> float:
    """ms from the fake's stamp to this client reading the first delta; then drains the stream."""
    latency = float("nan")
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and latency != latency:
            data = orjson.loads(line[6:])
            text = data.get("text") if event == "delta" else (data.get("delta") or {}).get("text")
            if text and "|" in text:
                latency = (time.perf_counter() - float(text.split("|")[0])) * 1000
    return latency


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
            async with direct.stream("POST", "/v1/messages", json=BASELINE_BODY) as response:
                base_ms.append(await first_delta_latency(response))
            chat = (await client.post("/api/v1/chats", json={}, headers=headers)).json()["id"]
            async with client.stream(
                "POST", f"/api/v1/chats/{chat}/messages", json={"content": f"question {i}"}, headers=headers
            ) as response:
                sage_ms.append(await first_delta_latency(response))
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


async def measure(base: str, hold_base: str, fake_url: str, hold_pid: int, requests: int, streams: int) -> None:
    start_rss = rss_mb(hold_pid)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        creds = {"email": "bench@example.com", "password": "bench-password"}
        await client.post("/api/v1/auth/register", json=creds)
        token = (await client.post("/api/v1/auth/login", json=creds)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
    await overhead(base, fake_url, headers, 30)  # warm-up: connections, pools, code paths
    base_ms, sage_ms = await overhead(base, fake_url, headers, requests)
    async with httpx.AsyncClient(base_url=hold_base, timeout=60) as client:
        await client.post("/api/v1/auth/register", json=creds)
        token = (await client.post("/api/v1/auth/login", json=creds)).json()["access_token"]
    held = await hold_streams(hold_base, {"Authorization": f"Bearer {token}"}, streams, hold_pid)

    print(f"Chat stream overhead on loopback, {requests} answers, 3 processes (fake model, Sage, client)")
    print(
        f"  baseline: fake model -> httpx client     p50 {pct(base_ms, 0.5):6.2f} ms   p99 {pct(base_ms, 0.99):6.2f} ms"
    )
    print(
        f"  sage:     fake model -> Sage -> client   p50 {pct(sage_ms, 0.5):6.2f} ms   p99 {pct(sage_ms, 0.99):6.2f} ms"
    )
    print(
        f"  -> added by Sage: p50 {pct(sage_ms, 0.5) - pct(base_ms, 0.5):+.2f} ms, "
        f"p99 {pct(sage_ms, 0.99) - pct(base_ms, 0.99):+.2f} ms; mean {statistics.fmean(sage_ms):.2f} ms vs "
        f"{statistics.fmean(base_ms):.2f} ms (goal p99 < 5 ms: {'met' if pct(sage_ms, 0.99) < 5 else 'NOT met'})"
    )
    marginal_kb = (held["full"] - held["half"]) * 1024 / max(1, held["streaming"] / 2)
    overall_kb = (held["full"] - start_rss) * 1024 / max(1, held["streaming"])
    print("Concurrent streams with a slow model (one token, then held open), one fresh Sage process:")
    print(
        f"  {int(held['streaming'])}/{streams} streaming, {int(held['failures'])} refused, opened in {held['ramp']:.1f} s "
        f"(waves of 50); server RSS {start_rss:.0f} MB at start, {held['idle']:.0f} MB after sign-up and 1,000 chats, "
        f"{held['half']:.0f} MB at {streams // 2} streams, {held['full']:.0f} MB at {streams}"
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


def main(requests: int, streams: int) -> None:
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
        fake_port, sage_port, hold_port = free_port(), free_port(), free_port()
        fake_url = f"http://127.0.0.1:{fake_port}"
        me = [sys.executable, "-m", "bench.bench_chat_stream"]
        procs.append(subprocess.Popen([*me, "_fake", str(fake_port)]))
        procs.append(subprocess.Popen([*me, "_serve", str(sage_port), db_url, valkey_url, fake_url]))
        procs.append(subprocess.Popen([*me, "_serve", str(hold_port), db_url, valkey_url, fake_url]))
        for port in (fake_port, sage_port, hold_port):
            wait_for_port(port, 120)
        asyncio.run(
            measure(
                f"http://127.0.0.1:{sage_port}",
                f"http://127.0.0.1:{hold_port}",
                fake_url,
                procs[2].pid,
                requests,
                streams,
            )
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
        run_sage(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
        parser.add_argument("--requests", type=int, default=300)
        parser.add_argument("--streams", type=int, default=1000)
        args = parser.parse_args()
        main(args.requests, args.streams)
