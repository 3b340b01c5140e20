"""HTTP throughput, latency and CPU per request: Sage vs a minimal FastAPI + asyncpg app, same run.

    .venv/bin/python -m bench.bench_http [--seconds 10] [--connections 32] [--repeat 3]

Load comes from `wrk` (Debian package `wrk`), a native load generator, so the client is not
the ceiling. Without `wrk` the benchmark says so and falls back to the Python client
(httpx), which saturates near 1,200 req/s on a 2-vCPU machine: its ratios then understate
the gap.

Sage runs as `sage serve` (one uvicorn worker) with real PostgreSQL and Valkey
(DATABASE_URL / VALKEY_URL, else throwaway servers on 127.0.0.1). The baseline is
bench/minimal_app.py under the same uvicorn settings: the same JWT decode (PyJWT HS256) and
primary-key read of the same user row through a plain asyncpg pool, and a FastAPI `/health`.
A bare ASGI app (bench/bare_app.py) shows the floor for `/health`. Each case runs `--repeat`
times, servers alternating; the medians are printed. CPU per request is the server
process's user + system CPU time over the run divided by the requests it answered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psutil  # type: ignore[import-untyped]

from bench._support import run_load, spawn_server, stores
from tests.support.servers import free_port

SAGE = str(Path(sys.executable).parent / "sage")
SECRET = "bench-secret-that-is-long-enough-0123456789"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: int


def _uvicorn(app: str, port: int) -> list[str]:
    """Baselines run under the same uvicorn settings as `sage serve` (sage.serving)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--no-server-header",
        "--timeout-keep-alive",
        "75",
    ]


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {percentile}% latency:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def wrk_run(url: str, headers: dict[str, str], *, seconds: float, connections: int, pid: int) -> Run:
    """One wrk run (1 thread: the other core is the server's) with the server's CPU time around it."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    cpu_before = _cpu_seconds(pid)
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    cpu = _cpu_seconds(pid) - cpu_before
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if total is None or rps is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests = int(total.group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in socket_errors.groups()) if socket_errors else 0)
    return Run(float(rps.group(1)), _latency_ms(out, "50"), _latency_ms(out, "99"), cpu / requests * 1e6, errors)


def python_run(url: str, headers: dict[str, str], *, seconds: float, connections: int, pid: int) -> Run:
    """The fallback: the Python client, a fixed request count sized to about `seconds`."""
    cpu_before = _cpu_seconds(pid)
    result = asyncio.run(
        run_load("", url, requests=int(seconds * 800), concurrency=connections, headers=headers or None)
    )
    cpu = _cpu_seconds(pid) - cpu_before
    requests = result.requests + min(50, result.requests)  # run_load's warm-up requests also cost CPU
    return Run(result.rps, result.pct(0.50), result.pct(0.99), cpu / requests * 1e6, result.errors)


def median_run(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        statistics.median(r.cpu_us for r in runs),
        sum(r.errors for r in runs),
    )


def row(name: str, run: Run) -> str:
    return (
        f"  {name:<34} {run.rps:>8,.0f} req/s   p50 {run.p50_ms:7.2f} ms   p99 {run.p99_ms:7.2f} ms   "
        f"{run.cpu_us:6.0f} µs CPU/req   errors {run.errors}"
    )


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def register(base: str) -> tuple[str, bytes]:
    with httpx.Client(base_url=base) as client:
        creds = {"email": "bench@example.com", "password": "bench-password"}
        client.post("/api/v1/auth/register", json=creds)
        token = client.post("/api/v1/auth/login", json=creds).json()["access_token"]
        body = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).content
    return token, body


def main(seconds: float, connections: int, repeat: int) -> None:
    use_wrk = shutil.which("wrk") is not None
    measure: Callable[..., Run] = wrk_run if use_wrk else python_run
    if not use_wrk:
        print(
            "wrk not found (Debian: apt-get install wrk): FALLING BACK to the Python load generator, which is "
            "itself the ceiling near 1,200 req/s on 2 vCPUs; ratios below understate the gap.\n"
        )
    with stores() as urls:
        db_url, valkey_url = urls.database_url, urls.valkey_url
        sage_env = {
            "DATABASE_URL": db_url,
            "VALKEY_URL": valkey_url,
            "SAGE_DATA_DIR": tempfile.mkdtemp(),
            "SAGE_MARKET_SOURCE": "off",
            "SAGE_JWT_SECRET": SECRET,
            "SAGE_LOG_LEVEL": "WARNING",
            "SAGE_AUTH_RATE_LIMIT_PER_IP": "10000",
        }
        minimal_env = {"MINIMAL_DATABASE_URL": db_url, "MINIMAL_JWT_SECRET": SECRET}
        sage_port, minimal_port, bare_port = free_port(), free_port(), free_port()
        with (
            spawn_server([SAGE, "serve", "--port", str(sage_port)], sage_env, sage_port) as sage,
            spawn_server(_uvicorn("bench.minimal_app:app", minimal_port), minimal_env, minimal_port) as minimal,
            spawn_server(_uvicorn("bench.bare_app:app", bare_port), {}, bare_port) as bare,
        ):
            token, sage_body = register(f"http://127.0.0.1:{sage_port}")
            auth = {"Authorization": f"Bearer {token}"}
            minimal_body = httpx.get(f"http://127.0.0.1:{minimal_port}/api/v1/users/me", headers=auth).content
            same = ("id", "email", "display_name")
            assert [orjson.loads(minimal_body)[k] for k in same] == [orjson.loads(sage_body)[k] for k in same]
            # Idle: started, one authenticated request answered, no load yet.
            rss = {name: psutil.Process(p.pid).memory_info().rss for name, p in (("sage", sage), ("minimal", minimal))}
            targets = {
                "sage": (sage.pid, f"http://127.0.0.1:{sage_port}"),
                "minimal": (minimal.pid, f"http://127.0.0.1:{minimal_port}"),
                "bare": (bare.pid, f"http://127.0.0.1:{bare_port}"),
            }
            cases = [
                ("GET /health", "/health", {}, ("minimal", "sage", "bare")),
                ("GET /api/v1/users/me", "/api/v1/users/me", auth, ("minimal", "sage")),
            ]
            results: dict[tuple[str, str], list[Run]] = {}
            for _, path, headers, names in cases:
                for name in names:  # warm-up: connections, pools, caches
                    pid, base = targets[name]
                    measure(base + path, headers, seconds=min(2, seconds), connections=connections, pid=pid)
            for i in range(repeat):
                for case, path, headers, names in cases:
                    for name in names if i % 2 == 0 else tuple(reversed(names)):
                        pid, base = targets[name]
                        run = measure(base + path, headers, seconds=seconds, connections=connections, pid=pid)
                        results.setdefault((case, name), []).append(run)

    tool = "wrk -t1" if use_wrk else "Python client (fallback)"
    print(
        f"HTTP on loopback: {tool}, {connections} connections, {seconds:g} s per run, medians of {repeat} runs; "
        f"each server one uvicorn process; load average {os.getloadavg()[0]:.1f}"
    )
    health = {name: median_run(results[("GET /health", name)]) for name in ("minimal", "sage", "bare")}
    me = {name: median_run(results[("GET /api/v1/users/me", name)]) for name in ("minimal", "sage")}
    print("GET /health")
    print(row("bare ASGI", health["bare"]))
    print(row("minimal FastAPI", health["minimal"]))
    print(row("sage", health["sage"]))
    health_ratio = health["sage"].rps / health["minimal"].rps
    print(
        f"  -> sage: {health_ratio:.0%} of minimal FastAPI's req/s, "
        f"{health['sage'].cpu_us / health['minimal'].cpu_us:.2f}x its CPU per request, "
        f"{health['sage'].rps / health['bare'].rps:.0%} of bare ASGI; goal >= 90 %: {verdict(health_ratio >= 0.9)}"
    )
    print("GET /api/v1/users/me (JWT + one PostgreSQL read)")
    print(row("minimal FastAPI + asyncpg", me["minimal"]))
    print(row("sage", me["sage"]))
    me_ratio = me["sage"].rps / me["minimal"].rps
    cpu_ratio = me["sage"].cpu_us / me["minimal"].cpu_us
    print(
        f"  -> sage: {me_ratio:.0%} of the minimal app's req/s (goal >= 70 %: {verdict(me_ratio >= 0.7)}), "
        f"{cpu_ratio:.2f}x its CPU per request (goal <= 1.4x: {verdict(cpu_ratio <= 1.4)}), "
        f"p99 {me['sage'].p99_ms / me['minimal'].p99_ms:.2f}x"
    )
    print(
        f"Idle RSS (started, one request answered): sage {rss['sage'] / 2**20:.0f} MB, "
        f"minimal FastAPI + asyncpg {rss['minimal'] / 2**20:.0f} MB ({rss['sage'] / rss['minimal']:.1f}x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case and server; medians are printed")
    args = parser.parse_args()
    main(args.seconds, args.connections, args.repeat)
