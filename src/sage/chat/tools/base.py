"""The chat's tool set: typed tools, and running one call as the asking user.

A `Tool` is a name, a description, a pydantic model of its arguments (its JSON schema is
what the model sees) and an async handler. `ToolBox.run` never raises for anything a
model or a user can cause: malformed JSON, arguments that fail validation, an unknown
tool, a domain refusal (`SageError`, `ToolError`), a timeout or an oversized result all
become an error result (`is_error`) the model reads and can recover from. Handlers get
the asking user's id from the `ToolCaller`, never from the model's arguments, so a user
only ever reaches their own data.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from sage.chat.grounding import Facts
from sage.chat.providers.base import ToolCall, ToolResult, ToolSpec
from sage.errors import SageError

log = logging.getLogger(__name__)

ArgsT = TypeVar("ArgsT", bound=BaseModel)

SUMMARY_MAX = 160


class ToolError(Exception):
    """A refusal the model should read (bad range, unknown symbol, ...); the message is safe to show."""


FactRecorder = Callable[[Facts], None]


@dataclass(frozen=True)
class ToolCaller:
    """Who is asking, and when: tools act as this user only."""

    user_id: uuid.UUID
    now: datetime


@dataclass(frozen=True)
class ToolOutput:
    data: dict[str, Any]  # JSON-able; what the model reads
    summary: str  # one short line for the `tool` SSE event ("BTC/USDT 1h candles, 168 bars")
    # Records the figures the answer may state because this tool returned them (grounding).
    ground: FactRecorder | None = None


@dataclass(frozen=True)
class Tool(Generic[ArgsT]):
    name: str
    description: str
    args: type[ArgsT]
    handler: Callable[[ArgsT, ToolCaller], Awaitable[ToolOutput]]
    timeout: float | None = None  # seconds; None: the tool box's (SAGE_CHAT_TOOL_TIMEOUT_SECONDS)

    def spec(self) -> ToolSpec:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(self.name, self.description, schema)


@dataclass(frozen=True)
class ToolOutcome:
    """One executed call: the result for the model and the record for the stream and the message."""

    call: ToolCall
    result: ToolResult
    arguments: Any  # the parsed arguments (or the raw text when it was not JSON)
    summary: str
    duration_ms: float
    ground: FactRecorder | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        return self.result.is_error

    def event(self) -> dict[str, Any]:
        """The `tool` SSE event's data (also stored with the message, so resume replays it)."""
        return {
            "id": self.call.id,
            "name": self.call.name,
            "arguments": self.arguments,
            "summary": self.summary,
            "is_error": self.result.is_error,
            "duration_ms": self.duration_ms,
        }


class ToolBox:
    """The tools offered to the model, run with a per-call timeout and a result size cap."""

    def __init__(self, tools: Sequence[Tool[Any]], *, timeout: float, max_result_chars: int) -> None:
        self.tools = {tool.name: tool for tool in tools}
        self.timeout = timeout
        self.max_result_chars = max_result_chars
        self.specs: tuple[ToolSpec, ...] = tuple(tool.spec() for tool in tools)

    async def run(self, call: ToolCall, caller: ToolCaller, *, deadline: float | None = None) -> ToolOutcome:
        started = time.perf_counter()
        arguments: Any = call.arguments
        try:
            tool = self.tools.get(call.name)
            if tool is None:
                raise ToolError(f"Unknown tool {call.name!r}; available: {', '.join(self.tools)}")
            try:
                arguments = orjson.loads(call.arguments or "{}")
            except orjson.JSONDecodeError:
                raise ToolError("The arguments were not valid JSON") from None
            if not isinstance(arguments, dict):
                raise ToolError("The arguments must be a JSON object")
            try:
                args = tool.args.model_validate(arguments)
            except ValidationError as exc:
                raise ToolError("Invalid arguments: " + _validation_message(exc)) from None
            timeout = tool.timeout if tool.timeout is not None else self.timeout
            if deadline is not None:
                timeout = min(timeout, deadline - asyncio.get_running_loop().time())
            try:
                async with asyncio.timeout(max(0.0, timeout)):
                    output = await tool.handler(args, caller)
            except TimeoutError:
                raise ToolError(f"{call.name} took longer than {timeout:.3g} s and was stopped") from None
            content = orjson.dumps(output.data, default=str).decode()
            if len(content) > self.max_result_chars:
                raise ToolError(
                    f"The result is too large ({len(content):,} characters, limit {self.max_result_chars:,}); "
                    "ask for less (fewer symbols, a shorter range or a coarser interval)"
                )
            return ToolOutcome(
                call=call,
                result=ToolResult(call.id, content),
                arguments=arguments,
                summary=_short(output.summary),
                duration_ms=_ms(started),
                ground=output.ground,
                data=output.data,
            )
        except (ToolError, SageError) as exc:
            message = str(exc) if isinstance(exc, ToolError) else exc.message
        except Exception:
            log.exception("chat tool failed", extra={"tool": call.name})
            message = f"{call.name} failed inside Sage; try again or answer without it"
        return ToolOutcome(
            call=call,
            result=ToolResult(call.id, orjson.dumps({"error": message}).decode(), is_error=True),
            arguments=arguments,
            summary=_short(message),
            duration_ms=_ms(started),
        )


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
