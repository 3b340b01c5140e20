"""Request latency per route template; streams are timed apart from ordinary responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from sage.observability.metrics import Metrics


async def test_latency_is_recorded_per_route_template_not_per_url(
    app_client: httpx.AsyncClient, metrics: Metrics
) -> None:
    await app_client.get("/api/v1/alerts/not-a-uuid")
    assert metrics.value("RequestLatency", route="/api/v1/alerts") == 0
    await app_client.get("/health")
    assert metrics.value("RequestLatency", route="/health", method="GET") == 1


async def test_event_streams_are_recorded_as_stream_duration(app_client: httpx.AsyncClient, metrics: Metrics) -> None:
    app: FastAPI = app_client.app  # type: ignore[attr-defined]

    async def events() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b": keep-alive\n\n"
            await asyncio.sleep(0.05)
            yield b"data: done\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    app.router.add_api_route("/test-events", events)
    response = await app_client.get("/test-events")
    assert response.status_code == 200
    assert metrics.value("StreamDuration", route="/test-events") == 1
    assert metrics.value("RequestLatency", route="/test-events") == 0


async def test_server_errors_are_counted_per_route(app_client: httpx.AsyncClient, metrics: Metrics) -> None:
    app: FastAPI = app_client.app  # type: ignore[attr-defined]

    async def broken() -> None:
        raise RuntimeError("boom")

    app.router.add_api_route("/test-broken", broken)
    assert (await app_client.get("/test-broken")).status_code == 500
    assert metrics.value("Http5xx", route="/test-broken") == 1
