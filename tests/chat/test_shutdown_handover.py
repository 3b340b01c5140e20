"""SIGTERM under open streams: every stream ends with a final event, and no answer is lost.

`sage serve` runs as a real process (uvicorn, its signal handling, its graceful shutdown).
When it gets SIGTERM, each open chat stream ends at once with `event: reconnect` (the
resume URL and the last event id) and each market stream simply ends, so nothing holds
the shutdown for the grace period. The answer keeps running on the stopping task into the
shared Valkey buffer: the client resumes on another task (here an in-process app on the
same PostgreSQL and Valkey) and gets the rest. An answer still running when the grace
period is nearly over is cut short there, stored as `incomplete`, and its readers are told.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from sage.store.chat_tables import ChatMessage
from tests.chat.fake_anthropic import Reply
from tests.chat.support import SSEEvent, SSEStream, eventually, iter_sse, new_chat, read_all, register
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"  # the same as make_settings'


class ServeProcess:
    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with log.open("wb") as out:  # a file, not a pipe nobody reads: a full pipe would stall the server
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sage.cli", "serve", "--port", str(port)],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"sage serve exited: {self.log.read_text()[-2000:]}")
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                return (await client.get(self.base_url + "/health")).status_code == 200
        except httpx.TransportError:
            return False


@pytest.fixture
async def serve(database_url, valkey_url, fake_anthropic, tmp_path) -> AsyncIterator[object]:
    started: list[ServeProcess] = []

    async def start(grace: float) -> ServeProcess:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}",
                "XDG_RUNTIME_DIR": "/tmp",
                "DATABASE_URL": database_url,
                "VALKEY_URL": valkey_url,
                "ANTHROPIC_API_KEY": "sk-test-not-a-real-key",
                "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
                "SAGE_LLM_PROVIDER": "anthropic",
                "SAGE_ENV": "development",
                "SAGE_JWT_SECRET": JWT_SECRET,
                "SAGE_DATA_DIR": str(tmp_path / "serve-data"),
                "SAGE_MARKET_SOURCE": "off",
                "SAGE_METRICS_EMF": "false",
                "SAGE_SYMBOLS": "BTC/USDT,ETH/USDT,SOL/USDT",
                "SAGE_SHUTDOWN_GRACE_SECONDS": str(grace),
                "SAGE_SSE_KEEPALIVE_SECONDS": "1",
            }
        )
        port = free_port()
        server = ServeProcess(env, port, tmp_path / f"serve-{port}.log")
        started.append(server)
        await eventually(server.healthy, timeout=90, interval=0.2)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            print(server.log.read_text()[-4000:])  # shown when the test failed
        server.process.wait(30)


async def _read_until_first_delta(stream: SSEStream, events: AsyncIterator) -> None:
    async for item in events:
        stream.items.append(item)
        if isinstance(item, SSEEvent) and item.event == "delta":
            return


async def _rest(events: AsyncIterator, stream: SSEStream) -> None:
    async for item in events:
        stream.items.append(item)


async def _market_stream_until_closed(base_url: str, opened: asyncio.Event) -> bytes:
    body = b""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=120) as client,
        client.stream("GET", "/api/v1/market/stream") as response,
    ):
        async for chunk in response.aiter_bytes():
            body += chunk
            opened.set()
    return body


async def test_sigterm_ends_streams_with_a_reconnect_and_the_answer_finishes_on_the_stopping_task(
    serve, fake_anthropic, chat_settings, live_server
):
    gate = asyncio.Event()
    fake_anthropic.queue(Reply(chunks=["Before ", "after."], gate=gate, gate_after_chunks=1))
    stopping = await serve(grace=600)  # a shutdown that waited for open streams would outlast this test
    other = await live_server(chat_settings())
    first = SSEStream()
    market_opened = asyncio.Event()
    market = asyncio.create_task(_market_stream_until_closed(stopping.base_url, market_opened))
    async with httpx.AsyncClient(base_url=stopping.base_url, timeout=120) as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "btc?"}, headers=headers
        ) as response:
            events = iter_sse(response)
            await _read_until_first_delta(first, events)
            await asyncio.wait_for(market_opened.wait(), 30)
            stopping.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(_rest(events, first), 60)
    await asyncio.wait_for(market, 60)  # the market stream was closed, not held open

    reconnect = first.last
    assert [e.event for e in first.events] == ["message", "delta", "reconnect"]
    assert reconnect.id == first.events[1].id == reconnect.data["last_event_id"]
    assert reconnect.data["resume_url"] == f"/api/v1/chats/{chat_id}/messages/{reconnect.data['message_id']}/stream"

    async with other.client() as client:
        resume_headers = {**headers, "Last-Event-ID": reconnect.data["last_event_id"]}
        async with client.stream("GET", reconnect.data["resume_url"], headers=resume_headers) as response:
            assert response.status_code == 200
            gate.set()  # the stopping task finishes the answer into the shared buffer
            rest = await asyncio.wait_for(read_all(response), 60)
    assert first.text + rest.text == "Before after."
    assert rest.last.event == "done" and rest.last.data["status"] == "complete"
    assert await asyncio.to_thread(stopping.process.wait, 60) == 0
    async with other.runtime.db.session() as session:
        stored = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalar_one()
    assert (stored.content, stored.status) == ("Before after.", "complete")


async def test_an_answer_longer_than_the_grace_is_stored_cut_short_and_its_resumed_reader_told(
    serve, fake_anthropic, chat_settings, live_server
):
    fake_anthropic.queue(Reply(chunks=["Before ", "never sent."], hold_after_chunks=1))
    stopping = await serve(grace=4)
    other = await live_server(chat_settings())
    first = SSEStream()
    async with httpx.AsyncClient(base_url=stopping.base_url, timeout=120) as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "btc?"}, headers=headers
        ) as response:
            events = iter_sse(response)
            await _read_until_first_delta(first, events)
            stopping.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(_rest(events, first), 60)
    reconnect = first.last
    assert reconnect.event == "reconnect"

    async with other.client() as client:
        resume_headers = {**headers, "Last-Event-ID": reconnect.data["last_event_id"]}
        async with client.stream("GET", reconnect.data["resume_url"], headers=resume_headers) as response:
            rest = await asyncio.wait_for(read_all(response), 60)
    assert rest.last.event == "error"
    assert (rest.last.data["code"], rest.last.data["status"]) == ("server_shutdown", "incomplete")
    assert await asyncio.to_thread(stopping.process.wait, 60) == 0
    async with other.runtime.db.session() as session:
        stored = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalar_one()
    assert (stored.content, stored.status) == ("Before ", "incomplete")
