"""Shared bits for benchmarks: servers on loopback, a bounded load generator, percentiles."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from tests.support.servers import free_port, wait_for_port


@dataclass
class LoadResult:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    def row(self) -> str:
        return (
            f"{self.name:<34} {self.rps:>9.0f} req/s   p50 {self.pct(0.50):6.2f} ms   "
            f"p95 {self.pct(0.95):6.2f} ms   p99 {self.pct(0.99):6.2f} ms   errors {self.errors}"
        )


@contextmanager
def serve_process(argv: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    """Run a server command in its own process, so the load generator does not share its GIL."""
    with spawn_server(argv, env, port):
        yield port


@contextmanager
def spawn_server(argv: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`serve_process`, yielding the process (its pid for CPU time and RSS) once /health answers."""
    process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def serve_in_thread(app: Any, **config: Any) -> Iterator[int]:
    """Run an ASGI app under uvicorn (same settings as `sage serve`) on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, timeout=120)
    while not server.started:
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


async def run_load(
    name: str, url: str, *, requests: int, concurrency: int, headers: dict[str, str] | None = None
) -> LoadResult:
    """Closed-loop load: `concurrency` clients, `requests` in total, bounded in count and time."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
        for _ in range(min(50, requests)):  # warm-up: connections, caches, JIT-free code paths
            await client.get(url)

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.get(url)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(name, len(latencies), elapsed, latencies, errors)


def ratio_line(subject: LoadResult, baseline: LoadResult) -> str:
    return (
        f"  -> {subject.name}: {subject.rps / baseline.rps:.0%} of the bare app's throughput, "
        f"p99 {subject.pct(0.99) / max(baseline.pct(0.99), 1e-9):.2f}x the bare app's"
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
