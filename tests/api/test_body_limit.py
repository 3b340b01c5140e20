"""Request bodies are capped per route and refused with a JSON 413 before they are read and
before authentication; a chunked body is cut off at the cap, so it is never buffered."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from sage.app import create_app
from sage.settings import Settings
from tests.support.servers import free_port

MB = 1024 * 1024


class CountingApp:
    """Outermost ASGI wrapper: how many body bytes the app pulled from the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


def _assert_413(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert str(limit) in error["message"]


async def test_a_declared_oversized_body_is_refused_unread_and_unauthenticated(app_client: httpx.AsyncClient) -> None:
    body = b'{"title": "' + b"x" * (100 * 1024) + b'"}'
    response = await app_client.post("/api/v1/chats", content=body, headers={"content-type": "application/json"})
    _assert_413(response, 65536)  # not 401: the size is checked before the missing token
    assert response.headers["x-request-id"]


async def test_a_body_under_the_cap_is_served(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/api/v1/auth/login", json={"email": "a@example.com", "password": "p" * 100, "x": "y" * 60_000}
    )
    assert response.status_code == 422  # read and validated (the unknown field), not refused for size


async def test_a_chunked_oversized_body_is_refused_as_a_413(app_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 4096

    response = await app_client.post(
        "/api/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    _assert_413(response, 65536)


async def test_upload_routes_get_the_larger_cap(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    listed = await app_client.get("/api/v1/portfolios", headers=auth_headers)
    assert listed.status_code == 200, listed.text
    portfolio_id = listed.json()[0]["id"]
    headers = {**auth_headers, "Content-Type": "text/csv"}
    # 1 MB of CSV is over the JSON cap but within the upload cap: it reaches the importer,
    # which refuses its header row (422), not the size (413).
    admitted = await app_client.post(
        f"/api/v1/portfolios/{portfolio_id}/import", content=b"a,b\n" * (MB // 4), headers=headers
    )
    assert admitted.status_code == 422, admitted.text
    _assert_413(
        await app_client.post(f"/api/v1/portfolios/{portfolio_id}/import", content=b"x" * (3 * MB), headers=headers),
        2 * MB,
    )
    _assert_413(
        await app_client.post(f"/api/v1/portfolios/{portfolio_id}/transactions", content=b"x" * MB, headers=headers),
        65536,
    )


@pytest.fixture
async def live_counting_server(settings: Settings) -> AsyncIterator[tuple[int, CountingApp]]:
    app: FastAPI = create_app(settings)
    counting = CountingApp(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(counting, host="127.0.0.1", port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                await asyncio.sleep(0.02)
        yield port, counting
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(30):
                await task


@pytest.mark.slow
async def test_a_streamed_50_mb_body_is_cut_off_at_the_cap(live_counting_server: tuple[int, CountingApp]) -> None:
    port, counting = live_counting_server
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    chunk = b"x" * (64 * 1024)
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0

    async def send_50_mb() -> None:
        nonlocal sent
        await loop.sock_sendall(
            sock,
            b"POST /api/v1/auth/register HTTP/1.1\r\nHost: sage.test\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        with contextlib.suppress(OSError):
            while sent < 50 * MB:
                await loop.sock_sendall(sock, framed)  # blocks once the server stops reading
                sent += len(chunk)

    async def read_until_closed() -> bytes:
        data = b""
        with contextlib.suppress(ConnectionResetError):  # a reset: the server left our bytes unread
            while piece := await loop.sock_recv(sock, 65536):
                data += piece
        return data

    sending = asyncio.create_task(send_50_mb())
    try:
        async with asyncio.timeout(30):
            response = await read_until_closed()  # returns only once the server closes the connection
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        sock.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert orjson.loads(body)["error"]["code"] == "payload_too_large"
    assert counting.received <= 65536 + len(chunk)  # the app never held more than the cap plus a chunk
    assert sent < 50 * MB
