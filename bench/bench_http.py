"""HTTP throughput and latency on loopback: Sage vs a bare ASGI app, same run, same server.

    .venv/bin/python -m bench.bench_http [--requests 4000] [--concurrency 32]

Sage runs with real PostgreSQL and Valkey (DATABASE_URL / VALKEY_URL, else throwaway
servers on 127.0.0.1). The bare app answers the same bytes with no middleware, no auth
and no database, so the ratio is the cost of Sage's stack per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench._support import ratio_line, run_load, serve_process
from sage.ops import schema
from tests.support.servers import PostgresProcess, ValkeyProcess, free_port

SAGE = str(Path(sys.executable).parent / "sage")


def _uvicorn(port: int) -> list[str]:
    """The baseline runs under the same uvicorn settings as `sage serve`."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--no-server-header",
    ]


async def main(requests: int, concurrency: int) -> None:
    servers: list[Any] = []
    db_url = os.environ.get("DATABASE_URL")
    valkey_url = os.environ.get("VALKEY_URL")
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
    try:
        await schema.upgrade(db_url)
        sage_env = {
            "DATABASE_URL": db_url,
            "VALKEY_URL": valkey_url,
            "SAGE_DATA_DIR": tempfile.mkdtemp(),
            "SAGE_MARKET_SOURCE": "off",
            "SAGE_JWT_SECRET": "bench-secret-that-is-long-enough-0123456789",
            "SAGE_LOG_LEVEL": "WARNING",
            "SAGE_AUTH_RATE_LIMIT_PER_IP": "10000",
        }
        sage_port = free_port()
        with serve_process([SAGE, "serve", "--port", str(sage_port)], sage_env, sage_port) as port:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base) as c:
                creds = {"email": "bench@example.com", "password": "bench-password"}
                await c.post("/api/v1/auth/register", json=creds)
                token = (await c.post("/api/v1/auth/login", json=creds)).json()["access_token"]
                me_body = (await c.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})).content
            auth = {"Authorization": f"Bearer {token}"}
            health_port, me_port = free_port(), free_port()
            with (
                serve_process(_uvicorn(health_port), {"BARE_BODY": '{"status":"ok"}'}, health_port) as bare_health_port,
                serve_process(_uvicorn(me_port), {"BARE_BODY": me_body.decode()}, me_port) as bare_me_port,
            ):
                bare_health = await run_load(
                    "bare ASGI  GET /health",
                    f"http://127.0.0.1:{bare_health_port}/health",
                    requests=requests,
                    concurrency=concurrency,
                )
                sage_health = await run_load(
                    "sage       GET /health", f"{base}/health", requests=requests, concurrency=concurrency
                )
                bare_me = await run_load(
                    "bare ASGI  GET /api/v1/users/me",
                    f"http://127.0.0.1:{bare_me_port}/api/v1/users/me",
                    requests=requests,
                    concurrency=concurrency,
                    headers=auth,
                )
                sage_me = await run_load(
                    "sage       GET /api/v1/users/me",
                    f"{base}/api/v1/users/me",
                    requests=requests,
                    concurrency=concurrency,
                    headers=auth,
                )
        print(
            f"HTTP on loopback, {requests} requests per case, {concurrency} concurrent clients, each server 1 process"
        )
        for result in (bare_health, sage_health, bare_me, sage_me):
            print(result.row())
        print(ratio_line(sage_health, bare_health))
        print(ratio_line(sage_me, bare_me))
    finally:
        for server in servers:
            server.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
