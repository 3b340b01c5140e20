"""Liveness and readiness.

/health calls nothing: the ALB and the container health check hit it every 30 s, and a
database blip must not mark every task unhealthy at once (the ALB would then have no
targets at all). /health/ready checks PostgreSQL and Valkey with a short timeout each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sage.api.deps import RuntimeDep

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 2.0


@router.get("/health", summary="Liveness (no dependency calls)")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _probe(check: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), READY_TIMEOUT_SECONDS)
        status, error = "ok", None
    except TimeoutError:
        status, error = "down", "timeout"
    except Exception as exc:
        status, error = "down", type(exc).__name__
    result: dict[str, Any] = {
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if error:
        result["error"] = error
    return result


class CheckOut(BaseModel):
    status: str = Field(description="ok or down")
    latency_ms: float
    error: str | None = Field(default=None, description="Exception class or `timeout` when down")


class ReadyOut(BaseModel):
    status: str = Field(description="ok or unavailable")
    checks: dict[str, CheckOut]


@router.get(
    "/health/ready",
    summary="Readiness: PostgreSQL and Valkey reachable",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "A dependency is down"}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    postgres, valkey = await asyncio.gather(_probe(runtime.db.ping), _probe(runtime.cache.backend.ping))
    checks = {"postgres": postgres, "valkey": valkey}
    ok = all(c["status"] == "ok" for c in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
