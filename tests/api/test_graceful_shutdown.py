"""SIGTERM drains: a request in flight when shutdown starts still completes."""

from __future__ import annotations

import asyncio
import gc

import httpx
import uvicorn

from sage.app import create_app
from sage.serving import uvicorn_options
from sage.settings import Settings
from tests.support.servers import free_port


async def test_in_flight_request_finishes_after_shutdown_begins(settings: Settings) -> None:
    app = create_app(settings)
    release = asyncio.Event()

    async def slow() -> dict[str, str]:
        await release.wait()
        return {"done": "yes"}

    app.router.add_api_route("/slow", slow)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **uvicorn_options(settings)))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        in_flight = asyncio.create_task(client.get("/slow"))
        while not server.server_state.tasks:  # the request has reached the app
            await asyncio.sleep(0.01)
        server.should_exit = True  # what uvicorn's SIGTERM handler does
        await asyncio.sleep(0.2)
        assert not serving.done(), "the server must wait for the in-flight request"
        release.set()
        response = await in_flight
    await asyncio.wait_for(serving, 30)
    assert response.status_code == 200 and response.json() == {"done": "yes"}


def test_production_grace_period_matches_the_alb_deregistration_delay() -> None:
    assert uvicorn_options(Settings())["timeout_graceful_shutdown"] == 30


async def test_a_started_app_has_frozen_its_start_up_heap_out_of_the_collectors_walks(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
