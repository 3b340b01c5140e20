"""`/api/v1/market/stream` fan-out: 1,000 and 10,000 SSE clients of one API process (issue 19, goal 3).

    python -m bench.bench_market_stream [--clients 1000 10000] [--seconds 20] [--reps 1] [--no-half-core]

Real parts: PostgreSQL, Valkey, `sage ingest` playing the recorded session at its real rate
(SAGE_MARKET_SOURCE=replay, ~12 ticker updates/s) and `sage serve` (one uvicorn worker).
The baseline, in the same run, on the same Valkey channel: `bench.bare_sse_hub`, a raw
asyncio server that coalesces per flush as Sage does and writes the same bytes to every
connection with `transport.write`. Clients: several processes, each holding thousands of
connections as bare asyncio protocols (uvloop); a few connections per process parse every
event (latency and delivery), the others count bytes and events.

Figures per case (medians over --reps):
- delivery latency: arrival time minus the ticker's `received_at` (stamped by the replay
  when it played the update), over the sampled connections;
- open at the end, and the connections closed before it by cause (client side: no answer,
  non-200, `slow_consumer` event, the server's close or reset); Sage's own counters
  (`MarketStreamsEnded` by reason, `SSESlowClientsDropped`) and the kernel's ListenOverflows;
- delivered: published updates (seen by the bench's own subscriber) that reached each
  sampled client, itself or as a newer update of the same symbol (coalescing), by the end of
  the window (updates of the window's last 2 s are not counted);
- server CPU per client-second: the process's user+system CPU over the window / (clients x
  window), and the ratio to the bare hub's; also net of the server's own CPU with no client
  (measured for 5 s before each case: Sage's runtime has background loops the hub has not,
  which weigh on the per-client figure at 1,000 clients); RSS per client: (RSS with the
  clients connected - RSS before they connected) / clients (a process reuses the memory a
  previous case of the same size freed, so the half-core cases, run after, show ~0).
Half core: each server in a cgroup (v1 `cpu`, or v2) with a 50 ms / 100 ms CPU quota, as a
0.5 vCPU Fargate task; without a writable cgroup it says so and skips those cases.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import psutil  # type: ignore[import-untyped]

from bench._support import spawn_server
from sage.ops import schema
from tests.support.servers import PostgresProcess, ValkeyProcess, free_port

SAGE = str(Path(sys.executable).parent / "sage")
CHANNEL = "sage:market:ticks"
FLUSH_SECONDS = 0.25
SAMPLED_PER_PROCESS = 20
IDLE_SECONDS = 5.0
CLIENT_PROCESSES = {1000: 1, 10000: 4}
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")

DATA = re.compile(rb"data: (\{[^\n]*\})\n")


# --- the client side (run as `python -m bench.bench_market_stream client ...`) -----------------


class _Conn(asyncio.Protocol):
    __slots__ = (
        "answered",
        "buffer",
        "bytes",
        "closed",
        "end",
        "errors",
        "events",
        "ok",
        "request",
        "sampled",
        "seen",
        "transport",
    )

    def __init__(self, request: bytes, sampled: bool) -> None:
        self.request = request
        self.sampled = sampled
        self.buffer = b""
        self.bytes = 0
        self.events = 0
        self.errors = 0
        self.closed = False
        self.end = ""  # why the connection closed (see `_close_cause`)
        self.ok: bool | None = None  # answered 200
        self.answered = asyncio.get_running_loop().create_future()  # done at the answer or the close
        self.seen: list[tuple[str, int, float]] = []  # (exchange/symbol, received_at ms, arrival s)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.ok is None:
            self.ok = data.startswith(b"HTTP/1.1 200")
            if not self.answered.done():
                self.answered.set_result(None)
        self.bytes += len(data)
        self.events += data.count(b"event: ticker")
        if b"event: error" in data:
            self.errors += 1
        if not self.sampled:
            return
        now = time.time()
        self.buffer += data
        end = self.buffer.rfind(b"\n\n")
        if end < 0:
            return
        done, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
        for match in DATA.finditer(done):
            wire = orjson.loads(match.group(1))
            self.seen.append((f"{wire['exchange']}/{wire['symbol']}", int(wire["received_at"]), now))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.end = _close_cause(self, exc)
        if not self.answered.done():
            self.answered.set_result(None)


def _close_cause(conn: _Conn, exc: Exception | None) -> str:
    """Why a connection closed before the bench closed it: no answer at all, a non-200
    answer, the server's `slow_consumer` error event, the server's clean close (EOF), or an
    error on the socket (its type)."""
    if conn.ok is None:
        return f"no answer ({type(exc).__name__ if exc else 'EOF'})"
    if not conn.ok:
        return "non-200"
    if conn.errors:
        return "slow_consumer event"
    return f"server closed ({type(exc).__name__})" if exc else "server closed (EOF)"


async def _client(port: int, count: int, sampled: int) -> None:
    loop = asyncio.get_running_loop()
    request = f"GET /api/v1/market/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    conns: list[_Conn] = []
    for start in range(0, count, 250):  # ramp up: 250 per batch, each batch answered before the next
        batch = [_Conn(request.encode(), len(conns) + i < sampled) for i in range(min(250, count - start))]
        await asyncio.gather(*(loop.create_connection(lambda c=c: c, "127.0.0.1", port) for c in batch))
        conns.extend(batch)
        # A connect completes when the kernel has queued the connection, not when the server has
        # accepted it: wait for the batch's answers (10 s at most) before the next, or a busy
        # server's listen queue overflows and the kernel resets what it could not queue.
        await asyncio.wait([c.answered for c in batch], timeout=10)  # (a timeout cancels nothing)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    line = await reader.readline()  # "T0 T1": the measuring window, epoch seconds
    _, t1 = (float(x) for x in line.split())
    seen = [[s for s in c.seen if s[2] <= t1 + 1] for c in conns if c.sampled]
    causes: dict[str, int] = {}
    for c in conns:
        if c.closed:
            causes[c.end] = causes.get(c.end, 0) + 1
    report = {
        "causes": causes,
        "open": sum(not c.closed for c in conns),
        "refused": sum(c.ok is False for c in conns),
        "errors": sum(c.errors for c in conns),
        "events": sum(c.events for c in conns),
        "bytes": sum(c.bytes for c in conns),
        "sampled": seen,
    }
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    sys.stdout.flush()
    for c in conns:
        c.transport.close()


def client_main(argv: list[str]) -> None:
    import uvloop

    port, count, sampled = (int(a) for a in argv)
    uvloop.run(_client(port, count, sampled))


# --- the driver ----------------------------------------------------------------------------------


@dataclass
class Case:
    server: str
    clients: int
    half_core: bool
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    delivered: float = 0.0
    cpu_us_per_client_s: float = 0.0
    net_cpu_us_per_client_s: float = 0.0  # the same, less the server's CPU with no client
    idle_cpu_percent: float = 0.0  # the server's CPU with no client, % of a core
    rss_kb_per_client: float = 0.0
    open_at_end: int = 0
    slow_dropped: int = 0
    refused: int = 0  # answered with something other than 200
    published: int = 0
    received_mb: float = 0.0
    closed: dict[str, int] = field(default_factory=dict)  # connections closed before the end, by cause
    server_counts: dict[str, float] = field(default_factory=dict)  # the server's own counters
    listen_overflows: int = 0  # the kernel's ListenOverflows during the case (namespace-wide)
    extra: dict[str, Any] = field(default_factory=dict)


class Published:
    """Every update on the channel, as the bench's own subscriber saw it."""

    def __init__(self, valkey_url: str) -> None:
        self.valkey_url = valkey_url
        self.updates: list[tuple[str, int]] = []
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        code = (
            "import sys, valkey, orjson\n"
            f"p = valkey.Valkey.from_url({self.valkey_url!r}).pubsub(); p.subscribe({CHANNEL!r})\n"
            "for m in p.listen():\n"
            "    if m['type'] == 'message':\n"
            "        for w in orjson.loads(m['data'])['tickers']:\n"
            "            sys.stdout.write(f\"{w['exchange']}/{w['symbol']} {w['received_at']}\\n\"); sys.stdout.flush()\n"
        )
        self._process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)

    def collect(self) -> list[tuple[str, int]]:
        assert self._process is not None and self._process.stdout is not None
        self._process.terminate()
        out = self._process.stdout.read().decode().split("\n")
        self._process.wait()
        return [(k, int(v)) for k, v in (line.split() for line in out if line.strip())]


COUNTER = re.compile(r"^(sage_sse_[a-z_]*|sage_market_streams?_[a-z_]*)(\{[^}]*\})? ([0-9.e+-]+)$", re.M)


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full (TcpExt
    ListenOverflows, for the whole network namespace: other processes' queues count too)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")]
    if len(lines) < 2:
        return 0
    return int(dict(zip(lines[0], lines[1], strict=True)).get("ListenOverflows", 0))


def server_counters(port: int) -> dict[str, float]:
    """Sage's SSE counters from its /metrics (slow clients dropped, streams ended by cause)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    return {m.group(1) + (m.group(2) or ""): float(m.group(3)) for m in COUNTER.finditer(response.text)}


@contextmanager
def spawn(argv: list[str], env: dict[str, str], port: int, log: Path) -> Any:
    """A server process, its stderr in `log`, once /health answers."""
    with spawn_server(argv, env, port, log=log, startup=180) as process:
        yield process


@contextmanager
def cpu_quota(pid: int, name: str) -> Any:
    """The process held to half a core by a CFS quota; yields None when no cgroup is writable."""
    group: Path | None = None
    if (CGROUP_V1 / "cpu.cfs_quota_us").exists():
        group = CGROUP_V1 / name
        try:
            group.mkdir(exist_ok=True)
            (group / "cpu.cfs_period_us").write_text("100000")
            (group / "cpu.cfs_quota_us").write_text("50000")
            (group / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            print(f"  half core: cgroup v1 not writable ({exc})")
            group = None
    elif (CGROUP_V2 / "cgroup.controllers").exists():
        group = CGROUP_V2 / name
        try:
            group.mkdir(exist_ok=True)
            (group / "cpu.max").write_text("50000 100000")
            (group / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            print(f"  half core: cgroup v2 not writable ({exc})")
            group = None
    try:
        yield group
    finally:
        if group is not None:
            root = group.parent
            for task in (group / "cgroup.procs").read_text().split():
                try:
                    (root / "cgroup.procs").write_text(task)
                except OSError:
                    pass
            try:
                group.rmdir()
            except OSError:
                pass


def measure(server: str, pid: int, port: int, clients: int, seconds: float, half: bool, valkey_url: str) -> Case:
    case = Case(server, clients, half)
    proc = psutil.Process(pid)
    rss_before = proc.memory_info().rss
    procs = CLIENT_PROCESSES.get(clients, max(1, clients // 2500))
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    counts_before = server_counters(port) if server == "sage" else {}
    # The server's own CPU with no client (Sage's process runs more than the hub: its runtime's
    # background loops), so the per-client figure can also be given net of it.
    idle0 = proc.cpu_times()
    time.sleep(IDLE_SECONDS)
    idle1 = proc.cpu_times()
    idle_per_s = ((idle1.user + idle1.system) - (idle0.user + idle0.system)) / IDLE_SECONDS
    overflows_before = listen_overflows()
    published = Published(valkey_url)
    published.start()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.bench_market_stream", "client", str(port), str(n), str(SAMPLED_PER_PROCESS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for n in per
    ]
    try:
        for w in workers:
            assert w.stdout is not None
            if w.stdout.readline().strip() != b"ready":
                raise RuntimeError("a client process failed to connect")
        time.sleep(3)  # warm-up: every connection past its opening frames
        cpu0 = proc.cpu_times()
        t0 = time.time()
        time.sleep(seconds)
        cpu1 = proc.cpu_times()
        t1 = time.time()
        rss = proc.memory_info().rss
        time.sleep(2)  # what was published by t1 has time to arrive
        reports = []
        for w in workers:
            assert w.stdin is not None and w.stdout is not None
            w.stdin.write(f"{t0} {t1}\n".encode())
            w.stdin.flush()
        for w in workers:
            assert w.stdout is not None
            reports.append(orjson.loads(w.stdout.readline()))
    finally:
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        updates = published.collect()
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    case.cpu_us_per_client_s = cpu / (clients * (t1 - t0)) * 1e6
    case.idle_cpu_percent = idle_per_s * 100
    case.net_cpu_us_per_client_s = max(0.0, cpu - idle_per_s * (t1 - t0)) / (clients * (t1 - t0)) * 1e6
    case.rss_kb_per_client = (rss - rss_before) / clients / 1024
    case.open_at_end = sum(r["open"] for r in reports)
    for r in reports:
        for cause, n in r["causes"].items():
            case.closed[cause] = case.closed.get(cause, 0) + n
    case.listen_overflows = listen_overflows() - overflows_before
    if server == "sage":  # the bare hub has no /metrics (it would answer with a stream)
        case.server_counts = {k: v - counts_before.get(k, 0.0) for k, v in server_counters(port).items()}
    case.slow_dropped = sum(r["errors"] for r in reports)
    case.refused = sum(r["refused"] for r in reports)
    case.received_mb = sum(r["bytes"] for r in reports) / 1e6
    window = [(k, ra) for k, ra in updates if t0 * 1000 <= ra <= (t1 - 2) * 1000]
    case.published = len(window)
    latencies: list[float] = []
    covered = total = 0
    for report in reports:
        for seen in report["sampled"]:
            newest: dict[str, int] = {}
            for key, ra, arrival in seen:
                newest[key] = max(newest.get(key, 0), ra)
                if t0 <= arrival <= t1:
                    latencies.append(arrival * 1000 - ra)
            total += len(window)
            covered += sum(1 for k, ra in window if newest.get(k, 0) >= ra)
    latencies.sort()
    if latencies:
        case.p50_ms = latencies[len(latencies) // 2]
        case.p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    case.delivered = covered / total if total else 0.0
    return case


def _median_case(cases: list[Case]) -> Case:
    out = Case(cases[0].server, cases[0].clients, cases[0].half_core)
    for name in (
        "p50_ms",
        "p99_ms",
        "delivered",
        "cpu_us_per_client_s",
        "net_cpu_us_per_client_s",
        "idle_cpu_percent",
        "rss_kb_per_client",
        "received_mb",
    ):
        setattr(out, name, statistics.median(getattr(c, name) for c in cases))
    for name in ("open_at_end", "slow_dropped", "refused", "published"):
        setattr(out, name, int(statistics.median(getattr(c, name) for c in cases)))
    return out


def _row(c: Case) -> str:
    return (
        f"  {c.server:<5} {c.clients:>6} clients{' (0.5 core)' if c.half_core else '           '} "
        f"p50 {c.p50_ms:8.0f} ms  p99 {c.p99_ms:8.0f} ms  delivered {c.delivered:7.2%}  "
        f"CPU {c.cpu_us_per_client_s:6.1f} µs/client-s (net of idle {c.net_cpu_us_per_client_s:5.1f}; "
        f"idle {c.idle_cpu_percent:4.1f} % of a core)  RSS {c.rss_kb_per_client:5.1f} KB/client  "
        f"open {c.open_at_end}/{c.clients}  non-200 {c.refused}  slow-dropped {c.slow_dropped}  updates {c.published}"
        + (f"\n        closed early, by cause (client side): {c.closed}" if c.closed else "")
        + (f"\n        kernel ListenOverflows meanwhile: {c.listen_overflows}" if c.listen_overflows else "")
        + (f"\n        server counters: {c.server_counts}" if c.server_counts else "")
    )


def run(clients_list: list[int], seconds: float, reps: int, half_core: bool) -> None:
    print(f"machine: {os.cpu_count()} vCPU, load average {os.getloadavg()} (other sessions share it)")
    with ExitStack() as stack:
        db_url = os.environ.get("DATABASE_URL")
        valkey_url = os.environ.get("VALKEY_URL")
        if not db_url:
            pg = PostgresProcess()
            pg.start()
            stack.callback(pg.destroy)
            db_url = pg.url
        if not valkey_url:
            vk = ValkeyProcess()
            vk.start()
            stack.callback(vk.destroy)
            valkey_url = vk.url
        asyncio.run(schema.upgrade(db_url))
        env = {
            "DATABASE_URL": db_url,
            "VALKEY_URL": valkey_url,
            "SAGE_DATA_DIR": tempfile.mkdtemp(),
            "SAGE_MARKET_SOURCE": "replay",
            "SAGE_JWT_SECRET": "bench-secret-bench-secret-bench-secret",
            "SAGE_LOG_LEVEL": "WARNING",
            "SAGE_MARKET_STREAM_FLUSH_SECONDS": str(FLUSH_SECONDS),
            "SAGE_METRICS_PROMETHEUS": "true",
        }
        ingest = subprocess.Popen([SAGE, "ingest"], env={**os.environ, **env}, stderr=subprocess.DEVNULL)
        stack.callback(ingest.wait, 30)
        stack.callback(ingest.terminate)
        sage_port, bare_port = free_port(), free_port()
        logs = Path(tempfile.mkdtemp(prefix="bench-market-stream-"))
        print(f"server logs: {logs}")
        sage = stack.enter_context(spawn([SAGE, "serve", "--port", str(sage_port)], env, sage_port, logs / "sage.log"))
        bare_argv = [
            sys.executable,
            "-m",
            "bench.bare_sse_hub",
            str(bare_port),
            valkey_url,
            CHANNEL,
            str(FLUSH_SECONDS),
        ]
        bare = stack.enter_context(spawn(bare_argv, {}, bare_port, logs / "bare.log"))
        servers = {"sage": (sage.pid, sage_port), "bare": (bare.pid, bare_port)}
        modes = [False, True] if half_core else [False]
        results: dict[tuple[str, int, bool], Case] = {}
        for clients in clients_list:
            for half in modes:
                for name in ("bare", "sage"):
                    pid, port = servers[name]
                    runs = []
                    with cpu_quota(pid, f"sage-bench-{name}") if half else _nothing() as group:
                        if half and group is None:
                            print("  half core: no writable cgroup on this machine; skipped")
                            continue
                        for _ in range(reps):
                            runs.append(measure(name, pid, port, clients, seconds, half, valkey_url))
                            print(_row(runs[-1]), flush=True)
                            time.sleep(2)
                    results[(name, clients, half)] = _median_case(runs)
        print(
            f"\nmedians of {reps} repetition(s), window {seconds:.0f} s, flush {FLUSH_SECONDS} s, "
            f"load average now {os.getloadavg()}"
        )
        for (name, clients, half), case in results.items():
            print(_row(case))
            if name != "sage" or ("bare", clients, half) not in results:
                continue
            base = results[("bare", clients, half)]
            ratio = case.cpu_us_per_client_s / base.cpu_us_per_client_s if base.cpu_us_per_client_s else float("inf")
            net = base.net_cpu_us_per_client_s
            net_ratio = case.net_cpu_us_per_client_s / net if net else float("inf")
            met = (
                case.delivered >= 0.999
                and case.p99_ms < 1000
                and case.rss_kb_per_client <= 20
                and ratio <= 1.5
                and case.slow_dropped == 0
                and case.open_at_end == case.clients
            )
            print(
                f"    -> sage/bare CPU per client-second {ratio:.2f}x (goal <= 1.5x; net of idle {net_ratio:.2f}x); p99 {case.p99_ms:.0f} ms "
                f"(goal < 1000); delivered {case.delivered:.2%} (goal 100 %); RSS {case.rss_kb_per_client:.1f} KB "
                f"(goal <= 20): goal {'MET' if met else 'NOT MET'}"
                + (" (half core: reported, the goal is stated for a full process)" if half else "")
            )


@contextmanager
def _nothing() -> Any:
    yield None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--no-half-core", action="store_true")
    args = parser.parse_args()
    run(args.clients, args.seconds, args.reps, not args.no_half_core)


if __name__ == "__main__":
    main()
