"""Shared bits for benchmarks: servers on loopback, a bounded load generator, percentiles."""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
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
def spawn_server(
    argv: list[str], env: dict[str, str], port: int, log: Path | None = None, startup: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """`serve_process`, yielding the process (its pid for CPU time and RSS) once /health answers.
    With `log`, stderr goes to that file (a long run fills a pipe nobody reads, stalling it)."""
    if log is not None:
        with log.open("wb") as err:
            process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=err)
    else:
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + startup
        while True:
            if process.poll() is not None:
                output = (
                    log.read_text()[-2000:]
                    if log is not None
                    else (process.stderr.read().decode() if process.stderr else "")
                )
                raise RuntimeError(f"server exited: {output}")
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


# -- chat benchmarks: the fake model, Sage and a client in separate processes ------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def cpu_load(workers: int = 1) -> Iterator[None]:
    """A second process loading the machine: `workers` busy-looping Python processes, stopped on exit."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL) for _ in range(workers)
    ]
    try:
        time.sleep(0.5)  # let the scheduler see them before measuring
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(30)


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} vCPUs"


class _ExtrasFormatter(logging.Formatter):
    """Warnings with their structured fields (operation, error, ...), prefixed so they stand out."""

    def format(self, record: logging.LogRecord) -> str:
        skip = set(vars(logging.makeLogRecord({}))) | {"message", "color_message"}
        extras = {k: v for k, v in vars(record).items() if k not in skip}
        return f"[sage server] {record.levelname} {record.getMessage()} {extras}"


def run_chat_sage(port: int, database_url: str, valkey_url: str, fake_url: str) -> None:
    """A Sage server for the chat benchmarks (subprocess): `sage serve`'s uvicorn options, the
    Anthropic provider pointed at the fake, limits out of the way."""
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
        ticker_stale_seconds=86_400,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(_ExtrasFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    options = uvicorn_options(settings)
    options["log_level"] = "warning"
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=port, **options
    )  # uvicorn_options: backlog 4096, as `sage serve`


@dataclass
class ChatServers:
    database_url: str
    valkey_url: str
    fake_url: str
    sage_urls: list[str]
    sage_pids: list[int]


@dataclass(frozen=True)
class Stores:
    database_url: str  # "" when not asked for
    valkey_url: str  # "" when not asked for


@contextmanager
def stores(*, database: bool = True, valkey: bool = True, migrate: bool = True) -> Iterator[Stores]:
    """PostgreSQL and Valkey for a benchmark: DATABASE_URL / VALKEY_URL when set, else throwaway
    servers on 127.0.0.1, destroyed on exit; the schema migrated to head unless `migrate=False`."""
    from sage.ops import schema
    from tests.support.servers import PostgresProcess, ValkeyProcess

    started: list[Any] = []
    try:
        database_url = os.environ.get("DATABASE_URL", "") if database else ""
        if database and not database_url:
            pg = PostgresProcess()
            started.append(pg)
            pg.start()
            database_url = pg.url
        valkey_url = os.environ.get("VALKEY_URL", "") if valkey else ""
        if valkey and not valkey_url:
            vk = ValkeyProcess()
            started.append(vk)
            vk.start()
            valkey_url = vk.url
        if database and migrate:
            schema.upgrade_sync(database_url)
        yield Stores(database_url, valkey_url)
    finally:
        for server in reversed(started):
            server.destroy()


@contextmanager
def chat_servers(
    module: str, *, sages: int = 1, before: Callable[[str, str], None] | None = None
) -> Iterator[ChatServers]:
    """PostgreSQL and Valkey (DATABASE_URL / VALKEY_URL, else throwaway ones), the migrated
    schema, then `python -m <module> _fake PORT` and `sages` x `python -m <module> _serve PORT
    DB VALKEY FAKE`, each its own process so no two share a GIL. `before(db, valkey)` runs
    once the stores are up, before the servers start (seeding, timing raw calls)."""
    procs: list[subprocess.Popen[bytes]] = []
    with stores() as urls:
        db_url, valkey_url = urls.database_url, urls.valkey_url
        if before is not None:
            before(db_url, valkey_url)
        try:
            fake_port = free_port()
            sage_ports = [free_port() for _ in range(sages)]
            fake_url = f"http://127.0.0.1:{fake_port}"
            me = [sys.executable, "-m", module]
            procs.append(subprocess.Popen([*me, "_fake", str(fake_port)]))
            for port in sage_ports:
                procs.append(subprocess.Popen([*me, "_serve", str(port), db_url, valkey_url, fake_url]))
            for port in (fake_port, *sage_ports):
                wait_for_port(port, 120)
            yield ChatServers(
                db_url, valkey_url, fake_url, [f"http://127.0.0.1:{p}" for p in sage_ports], [p.pid for p in procs[1:]]
            )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def chat_entry(module: str, run_fake: Callable[[int], Any], main: Callable[[], None]) -> None:
    """A chat benchmark's `__main__`: its fake (`_fake`), a Sage server (`_serve`), or the client."""
    if len(sys.argv) > 1 and sys.argv[1] == "_fake":
        asyncio.run(run_fake(int(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "_serve":
        run_chat_sage(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        main()


async def sign_up(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Register (once) and log in; the Authorization header."""
    creds = {"email": email, "password": "bench-password"}
    await client.post("/api/v1/auth/register", json=creds)
    token = (await client.post("/api/v1/auth/login", json=creds)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) of a Server-Sent Events response, in order (comments skipped)."""
    event = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, orjson.loads(line[6:])
        elif not line:
            event = "message"


async def ask(
    client: httpx.AsyncClient, headers: dict[str, str], question: str
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A new chat, one question, its answer's events as `sse_events` gives them."""
    chat = (await client.post("/api/v1/chats", json={}, headers=headers)).json()["id"]
    async with client.stream(
        "POST", f"/api/v1/chats/{chat}/messages", json={"content": question}, headers=headers
    ) as response:
        async for item in sse_events(response):
            yield item


def stamped(text: str) -> float | None:
    """The number a fake wrote before `|` at the start of a text delta (a clock, or a gap in ms), if any."""
    head, sep, _ = text.partition("|")
    return float(head) if sep else None


def p50_p99(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5):6.2f} ms   p99 {pct(values, 0.99):6.2f} ms"
