"""Claude through the official SDK (AsyncAnthropic, Messages streaming).

Retries are ours, not the SDK's (`max_retries=0`): a 429/529/5xx or a dropped connection
is retried only while no text has been yielded, so a retry can never duplicate text;
the wait honours `retry-after` / `retry-after-ms` and never runs past the request's
deadline. An `error` event after text (e.g. `overloaded_error` after HTTP 200) ends the
stream with a ProviderError marked `before_first_token=False`; the caller keeps the
partial answer. Cancelling the consumer closes the HTTP stream: the `async with` around
it exits on the CancelledError that lands at its await.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import httpx2
import orjson
from anthropic import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncAnthropic,
    AsyncStream,
    AuthenticationError,
    BadRequestError,
    DefaultAsyncHttpxClient,
    PermissionDeniedError,
    RateLimitError,
    Timeout,
    omit,
)
from anthropic.types import RawMessageStreamEvent

from sage.chat.providers.base import (
    Finished,
    ModelEvent,
    ModelRequest,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolUse,
    Usage,
    UsageUpdate,
)

log = logging.getLogger(__name__)

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0

_ERROR_CODES = {
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limited",
    "api_error": "upstream_error",
    "timeout_error": "timeout",
    "request_too_large": "request_too_large",
    "invalid_request_error": "upstream_bad_request",
    "authentication_error": "upstream_auth",
    "permission_error": "upstream_auth",
    "not_found_error": "upstream_bad_request",
}
_RETRYABLE_CODES = {
    "overloaded",
    "rate_limited",
    "upstream_error",
    "timeout",
    "upstream_unavailable",
    "upstream_incomplete",
}
_MESSAGES = {
    "overloaded": "The model is overloaded right now; please try again shortly.",
    "rate_limited": "The model provider is rate limiting Sage right now; please try again shortly.",
    "upstream_error": "The model provider had an internal error.",
    "timeout": "The model provider did not answer in time.",
    "upstream_unavailable": "The model provider could not be reached.",
    "upstream_incomplete": "The model's answer stopped before it was complete.",
    "upstream_auth": "The model provider rejected Sage's credentials; an operator has to fix the configuration.",
    "upstream_bad_request": "The model provider rejected the request.",
    "request_too_large": "The question and its context are too large for the model.",
}


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            parsed = email.utils.parsedate_tz(raw)
            if parsed is not None:
                return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def classify(exc: BaseException, *, text_seen: bool) -> ProviderError:
    """Map an SDK / transport exception to a ProviderError with a safe message."""
    before = not text_seen
    status: int | None = None
    retry_after: float | None = None
    if isinstance(exc, APIStatusError):
        status = exc.status_code
        retry_after = parse_retry_after(exc.response.headers) if status != 200 else None
        error_type = exc.type if isinstance(exc.type, str) else None
        if isinstance(exc, RateLimitError):
            code = "rate_limited"
        elif isinstance(exc, AuthenticationError | PermissionDeniedError):
            code = "upstream_auth"
        elif isinstance(exc, BadRequestError):
            code = "upstream_bad_request"
        elif status == 529 or error_type == "overloaded_error":
            code = "overloaded"
        elif error_type in _ERROR_CODES:
            code = _ERROR_CODES[error_type]
        elif status >= 500 or status in (408, 409) or status == 200:
            code = "upstream_error"
        else:
            code = "upstream_bad_request"
    elif isinstance(exc, APITimeoutError | httpx2.TimeoutException):
        code = "timeout"
    elif isinstance(exc, APIConnectionError | httpx2.TransportError):
        code = "upstream_unavailable"
    else:
        code = "upstream_error"
    return ProviderError(
        code=code,
        message=_MESSAGES.get(code, "The model provider failed."),
        retryable=code in _RETRYABLE_CODES and before,
        retry_after=retry_after,
        before_first_token=before,
        status=status,
    )


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None and retry_after > 0:
        return min(retry_after, MAX_RETRY_AFTER)
    base: float = min(INITIAL_BACKOFF * (2.0**attempt), MAX_BACKOFF)
    return base * (1 - 0.25 * random.random())


class AnthropicModel:
    """The `anthropic` provider."""

    name = "anthropic"
    offline = False

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        connect_timeout_seconds: float = 5.0,
        max_retries: int = 2,
        max_connections: int | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.max_retries = max_retries
        self._timeout = Timeout(timeout_seconds, connect=connect_timeout_seconds)
        kwargs: dict[str, Any] = {}
        if http_client is None and max_connections is not None:
            # the SDK's default pool stops at 1,000 connections; size it to our permits so
            # a permit never waits for a connection (nor a connection for a permit)
            http_client = DefaultAsyncHttpxClient(
                timeout=self._timeout,
                limits=httpx2.Limits(
                    max_connections=max_connections, max_keepalive_connections=min(100, max_connections)
                ),
            )
        if http_client is not None:
            kwargs["http_client"] = http_client
        self.client = AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,  # None: the SDK's default (and its ANTHROPIC_BASE_URL handling)
            max_retries=0,
            timeout=self._timeout,
            **kwargs,
        )
        self.retries = 0  # attempts retried since start (tests and metrics read it)

    async def aclose(self) -> None:
        await self.client.close()

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        loop = asyncio.get_running_loop()
        attempt = 0
        spent = Usage()  # input tokens of failed attempts are billed too: carry them forward
        while True:
            text_seen = False
            seen = Usage()
            try:
                # aclosing: if our consumer stops early, the inner stream (and its HTTP
                # connection) closes now, not whenever the garbage collector gets to it.
                async with aclosing(self._attempt(request)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta | ToolUse):
                            text_seen = True  # output seen: a retry could repeat it
                        elif isinstance(event, UsageUpdate):
                            seen = event.usage
                            event = UsageUpdate(_plus(event.usage, spent))
                        elif isinstance(event, Finished):
                            event = Finished(event.stop_reason, _plus(event.usage, spent))
                        yield event
                return
            except ProviderError as error:
                failure = error
                failure.before_first_token = not text_seen
                failure.retryable = failure.retryable and not text_seen
            except (APIStatusError, APIConnectionError, httpx2.HTTPError) as exc:
                failure = classify(exc, text_seen=text_seen)
            if not failure.retryable or attempt >= self.max_retries:
                raise failure
            delay = backoff_delay(attempt, failure.retry_after)
            if loop.time() + delay >= request.deadline:
                raise failure
            log.info(
                "model call failed before the first token; retrying",
                extra={
                    "code": failure.code,
                    "status": failure.status,
                    "delay_s": round(delay, 3),
                    "attempt": attempt + 1,
                },
            )
            spent = _plus(spent, seen)
            attempt += 1
            self.retries += 1
            await asyncio.sleep(delay)

    async def _attempt(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        usage = Usage()
        stop_reason: str | None = None
        stopped = False
        metadata: Any = {"user_id": request.metadata_user_id} if request.metadata_user_id else omit
        tools: Any = tool_params(request) if request.tools else omit
        # the last round keeps the tools (the history holds tool_use blocks, and the cached
        # prefix stays identical) but forbids calling them: the model must answer in text
        tool_choice: Any = {"type": "none"} if request.tools and not request.allow_tools else omit
        tool_blocks: dict[int, tuple[str, str, list[str]]] = {}  # index -> (id, name, JSON parts)
        # raw events (`create(stream=True)`), not the SDK's accumulating helper: that one
        # parses tool input JSON itself and raises on a model's malformed arguments, which
        # must become an error tool_result instead
        stream: AsyncStream[RawMessageStreamEvent] = await self.client.messages.create(  # type: ignore[assignment]
            model=self.model,
            max_tokens=request.max_tokens,
            system=system_blocks(request),  # type: ignore[arg-type]
            messages=messages(request),  # type: ignore[arg-type]
            timeout=self._timeout,
            stream=True,
            metadata=metadata,
            tools=tools,
            tool_choice=tool_choice,
        )
        async with stream:
            # The wire events are read as plain JSON (orjson), not as the SDK's typed models:
            # building a pydantic model per event cost ~75 us, and a chunk often carries
            # several events, so the first token waited for the models of those after it.
            # `async with stream` still closes the response however the loop ends.
            async for sse in AsyncStream.raw_events(stream.response):
                kind = sse.event
                if kind is None or kind == "ping":
                    continue
                if kind == "error":
                    raise self._stream_error(sse.data, stream.response)
                if not sse.data:
                    continue
                event = orjson.loads(sse.data)
                if kind == "content_block_delta":
                    delta = event["delta"]
                    if delta["type"] == "text_delta":
                        if delta["text"]:
                            yield TextDelta(delta["text"])
                    elif delta["type"] == "input_json_delta" and event["index"] in tool_blocks:
                        tool_blocks[event["index"]][2].append(delta["partial_json"])
                elif kind == "content_block_start":
                    block = event["content_block"]
                    if block["type"] == "tool_use":
                        tool_blocks[event["index"]] = (block["id"], block["name"], [])
                elif kind == "content_block_stop":
                    if event["index"] in tool_blocks:
                        call_id, name, parts = tool_blocks.pop(event["index"])
                        yield ToolUse(ToolCall(call_id, name, "".join(parts)))
                elif kind == "message_start":
                    start = event["message"]["usage"]
                    usage.input_tokens = start.get("input_tokens") or 0
                    usage.output_tokens = start.get("output_tokens") or 0
                    usage.cache_read_tokens = start.get("cache_read_input_tokens") or 0
                    usage.cache_creation_tokens = start.get("cache_creation_input_tokens") or 0
                    yield UsageUpdate(_plus(usage, Usage()))
                elif kind == "message_delta":
                    # usage on message_delta is cumulative: overwrite, keep what it omits
                    delta_usage = event.get("usage") or {}
                    usage.output_tokens = delta_usage.get("output_tokens") or 0
                    if delta_usage.get("input_tokens") is not None:
                        usage.input_tokens = delta_usage["input_tokens"]
                    if delta_usage.get("cache_read_input_tokens") is not None:
                        usage.cache_read_tokens = delta_usage["cache_read_input_tokens"]
                    if delta_usage.get("cache_creation_input_tokens") is not None:
                        usage.cache_creation_tokens = delta_usage["cache_creation_input_tokens"]
                    stop_reason = (event.get("delta") or {}).get("stop_reason")
                    yield UsageUpdate(_plus(usage, Usage()))
                elif kind == "message_stop":
                    stopped = True
        if not stopped:
            raise ProviderError(code="upstream_incomplete", message=_MESSAGES["upstream_incomplete"], retryable=True)
        yield Finished(stop_reason, _plus(usage, Usage()))

    def _stream_error(self, data: str, response: httpx2.Response) -> APIStatusError:
        """An `error` event in a 200 stream, as the SDK's own stream raises it (classify reads it)."""
        body: Any = data
        try:
            body = orjson.loads(data)
            message = f"{body}"
        except orjson.JSONDecodeError:
            message = data or f"Error code: {response.status_code}"
        return self.client._make_status_error(message, body=body, response=response)


CACHE_BREAKPOINT: dict[str, Any] = {"type": "ephemeral"}


def tool_params(request: ModelRequest) -> list[dict[str, Any]]:
    """Tool definitions in a fixed order; the last carries the first cache breakpoint."""
    tools: list[dict[str, Any]] = [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in request.tools
    ]
    if tools:
        tools[-1]["cache_control"] = CACHE_BREAKPOINT
    return tools


def system_blocks(request: ModelRequest) -> list[dict[str, Any]]:
    """The static instructions (ending in the second cache breakpoint), then the live part.

    The cache prefix runs tools -> system -> messages, so everything up to the static
    block's breakpoint is identical for every question of every user; the time, the live
    figures and the user's data come after it and are never part of a cached prefix."""
    blocks: list[dict[str, Any]] = []
    if request.instructions:
        blocks.append({"type": "text", "text": request.instructions, "cache_control": CACHE_BREAKPOINT})
    if request.system:
        blocks.append({"type": "text", "text": request.system})
    return blocks


def messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The chat's turns, then this answer's tool rounds (assistant tool_use, user tool_result)."""
    out: list[dict[str, Any]] = [{"role": turn.role, "content": turn.content} for turn in request.turns]
    for round_ in request.rounds:
        content: list[dict[str, Any]] = []
        if round_.text:
            content.append({"type": "text", "text": round_.text})
        for call in round_.calls:
            content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call.arguments)})
        out.append({"role": "assistant", "content": content})
        out.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error}
                    for r in round_.results
                ],
            }
        )
    return out


def _tool_input(arguments: str) -> dict[str, Any]:
    # the API wants the tool_use input back as an object; malformed arguments (already
    # answered with an error result) go back as {}
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _plus(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
        cache_creation_tokens=a.cache_creation_tokens + b.cache_creation_tokens,
    )
