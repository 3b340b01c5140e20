"""A fake Anthropic Messages API on 127.0.0.1 speaking the real streaming wire protocol.

HTTP/1.1 with chunked transfer encoding, like the real API, so an abrupt close mid-body
is a protocol error to the client exactly as it would be in production. Error replies
keep the connection alive; streamed replies close it when done.
Each request takes the next scripted `Reply` (or the default one) and is recorded with
its headers, JSON body, and whether the client hung up before the reply was finished.

Event flow per reply: message_start, content_block_start, ping, content_block_delta
(text_delta) x N, content_block_stop, message_delta (cumulative usage), message_stop.
A reply may end in `tool_use` blocks (content_block_start type tool_use, input_json_delta
fragments, stop_reason tool_use). Prompt caching is emulated at the last cache_control
breakpoint: an identical prefix (of at least the minimum cacheable length) seen within 5
minutes is reported as cache_read_input_tokens, else as cache_creation_input_tokens.
Scripts can instead answer an HTTP error (429 + retry-after, 529), send an `error` event
after some text, wait before the first token, or drop the connection mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class ToolUseScript:
    """One tool_use block the fake model emits: `input` as JSON, or `raw` JSON text (may be malformed)."""

    name: str
    input: dict[str, Any] | None = None
    raw: str | None = None
    id: str | None = None

    def json_text(self) -> str:
        return self.raw if self.raw is not None else orjson.dumps(self.input or {}).decode()


@dataclass
class Reply:
    chunks: list[str] = field(default_factory=lambda: ["Hello", " from", " the", " fake", " model."])
    input_tokens: int = 42
    output_tokens: int | None = None  # default: one per chunk
    cache_read_tokens: int = 0
    first_token_delay: float = 0.0
    between_delay: float = 0.0
    stop_reason: str = "end_turn"
    # failure modes
    status: int = 200
    error_type: str | None = None  # for HTTP errors and for mid-stream `error` events
    retry_after: str | None = None
    error_after_chunks: int | None = None  # send an `error` event after this many chunks
    drop_after_chunks: int | None = None  # close the socket (no final chunk) after this many chunks
    hold_after_chunks: int | None = None  # stop sending (but keep the connection) after this many chunks
    gate: asyncio.Event | None = None  # with gate_after_chunks: pause there until the test sets it
    gate_after_chunks: int | None = None
    # tool use: after the text (if any), one tool_use block per script; stop_reason tool_use
    tool_calls: list[ToolUseScript] = field(default_factory=list)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    reply: Reply
    cache_read: int = 0
    cache_creation: int = 0
    received_at: float = 0.0  # perf_counter when the request was read
    stop_sent_at: float = 0.0  # perf_counter when message_stop went out
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    chunks_sent: int = 0


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


CACHE_TTL_SECONDS = 300.0  # the default ephemeral cache lives 5 minutes from its last use
MIN_CACHEABLE_TOKENS = 1024  # the documented minimum for Sonnet-class models


def estimate_tokens(value: Any) -> int:
    """The fake's tokenizer: 4 characters of JSON per token (a common estimate for English)."""
    return -(-len(orjson.dumps(value)) // 4)


def cached_prefix(body: dict[str, Any]) -> list[Any]:
    """The request up to its last cache_control breakpoint (tools, then system blocks), as the API orders it."""
    parts: list[Any] = []
    prefix: list[Any] = []
    for tool in body.get("tools") or []:
        parts.append(tool)
        if "cache_control" in tool:
            prefix = list(parts)
    system = body.get("system")
    for block in system if isinstance(system, list) else []:
        parts.append(block)
        if "cache_control" in block:
            prefix = list(parts)
    return prefix


class FakeAnthropic:
    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.prompt_cache: dict[bytes, float] = {}  # prefix -> loop time of its last use
        self.script: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(1)
        self._connections: set[asyncio.Task[None]] = set()
        self.request_arrived = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def start(self, port: int = 0, backlog: int = 100) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=backlog)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self.request_arrived.clear()
                await self.request_arrived.wait()

    def reply_for(self, body: dict[str, Any]) -> Reply:
        """The next scripted reply, else the default (benchmarks choose by the request)."""
        return self.script.popleft() if self.script else self.default

    def chunk_text(self, record: Recorded, index: int, text: str) -> str:
        """The text of chunk `index` as it goes out (benchmarks stamp the send time into it)."""
        return text

    # -- protocol ------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                path, headers, body = request
                reply = self.reply_for(body)
                record = Recorded(path, headers, body, reply, received_at=time.perf_counter())
                self._emulate_cache(record)
                self.requests.append(record)
                self.request_arrived.set()
                keep_open = await self._respond(record, reader, writer)
                record.finished.set()
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    def _emulate_cache(self, record: Recorded) -> None:
        """Prompt caching at the breakpoint: an identical prefix within 5 minutes is read from cache."""
        prefix = cached_prefix(record.body)
        if not prefix:
            return
        tokens = estimate_tokens(prefix)
        if tokens < MIN_CACHEABLE_TOKENS:
            return  # below the minimum nothing is cached, silently, like the real API
        key = orjson.dumps(prefix, option=orjson.OPT_SORT_KEYS)
        now = asyncio.get_running_loop().time()
        last = self.prompt_cache.get(key)
        if last is not None and now - last < CACHE_TTL_SECONDS:
            record.cache_read = tokens
        else:
            record.cache_creation = tokens
        self.prompt_cache[key] = now

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, dict[str, str], dict[str, Any]] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        raw = await reader.readexactly(length) if length else b"{}"
        return path, headers, orjson.loads(raw)

    async def _respond(self, record: Recorded, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        reply = record.reply
        if reply.status != 200:
            body = orjson.dumps(
                {"type": "error", "error": {"type": reply.error_type or "api_error", "message": "fake failure"}}
            )
            extra = f"retry-after: {reply.retry_after}\r\n" if reply.retry_after is not None else ""
            writer.write(
                (
                    f"HTTP/1.1 {reply.status} Error\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nrequest-id: req_fake_{next(self._ids)}\r\n{extra}\r\n"
                ).encode()
                + body
            )
            await writer.drain()
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\nconnection: close\r\nrequest-id: req_fake_%d\r\n\r\n" % next(self._ids)
        )
        closed = asyncio.create_task(self._watch_close(reader, record))
        try:
            await self._stream(record, writer, closed)
            # one streamed reply per connection: the hang-up watcher may have consumed
            # bytes of a next request, so the connection is not reused
            return False
        finally:
            closed.cancel()
            with contextlib.suppress(BaseException):
                await closed

    async def _watch_close(self, reader: asyncio.StreamReader, record: Recorded) -> None:
        # the client sends nothing while it reads a response; EOF means it hung up
        with contextlib.suppress(ConnectionError):
            await reader.read(1)
        record.client_closed.set()

    async def _pause(self, seconds: float, closed: asyncio.Task[None]) -> bool:
        """Sleep, unless the client hangs up first (then False)."""
        if closed.done():
            return False
        if seconds <= 0:
            return True
        done, _ = await asyncio.wait({closed}, timeout=seconds)
        return not done

    async def _stream(self, record: Recorded, writer: asyncio.StreamWriter, closed: asyncio.Task[None]) -> bool:
        reply = record.reply
        model = record.body.get("model", "claude-test")

        async def send(event: str, data: dict[str, Any]) -> None:
            writer.write(_chunk(_sse(event, data)))
            await writer.drain()

        await send(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_fake_{len(self.requests)}",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": reply.input_tokens,
                        "output_tokens": 1,
                        "cache_read_input_tokens": reply.cache_read_tokens + record.cache_read,
                        "cache_creation_input_tokens": record.cache_creation,
                    },
                },
            },
        )
        await send(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        await send("ping", {"type": "ping"})
        if not await self._pause(reply.first_token_delay, closed):
            return False
        for index, text in enumerate(reply.chunks):
            if reply.error_after_chunks is not None and index == reply.error_after_chunks:
                await send(
                    "error",
                    {
                        "type": "error",
                        "error": {"type": reply.error_type or "overloaded_error", "message": "Overloaded"},
                    },
                )
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return True
            if reply.drop_after_chunks is not None and index == reply.drop_after_chunks:
                writer.transport.abort()
                return False
            if reply.hold_after_chunks is not None and index == reply.hold_after_chunks:
                await closed  # wait (indefinitely) for the client to hang up
                return False
            if reply.gate is not None and index == reply.gate_after_chunks:
                gate = asyncio.ensure_future(reply.gate.wait())
                await asyncio.wait({gate, closed}, return_when=asyncio.FIRST_COMPLETED)
                gate.cancel()
                if closed.done():
                    return False
            if index and not await self._pause(reply.between_delay, closed):
                return False
            text = self.chunk_text(record, index, text)
            await send(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            )
            record.chunks_sent += 1
        await send("content_block_stop", {"type": "content_block_stop", "index": 0})
        for offset, script in enumerate(reply.tool_calls, start=1):
            call_id = script.id or f"toolu_fake_{next(self._ids)}"
            await send(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": offset,
                    "content_block": {"type": "tool_use", "id": call_id, "name": script.name, "input": {}},
                },
            )
            text = script.json_text()
            for start in range(0, len(text), 12):  # the API streams tool input in small JSON fragments
                await send(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": offset,
                        "delta": {"type": "input_json_delta", "partial_json": text[start : start + 12]},
                    },
                )
            await send("content_block_stop", {"type": "content_block_stop", "index": offset})
        output = reply.output_tokens if reply.output_tokens is not None else len(reply.chunks) + len(reply.tool_calls)
        stop_reason = "tool_use" if reply.tool_calls else reply.stop_reason
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {
                    "output_tokens": output,
                    "input_tokens": reply.input_tokens,
                    "cache_read_input_tokens": reply.cache_read_tokens + record.cache_read,
                    "cache_creation_input_tokens": record.cache_creation,
                },
            },
        )
        await send("message_stop", {"type": "message_stop"})
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        record.stop_sent_at = time.perf_counter()
        return True
