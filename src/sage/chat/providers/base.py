"""The one protocol every model provider speaks, and the events it yields.

A provider turns a `ModelRequest` into an async stream of `TextDelta`, `UsageUpdate`,
`ToolUse` and finally `Finished` (stop reason `tool_use` when the model waits for tool
results: the caller runs them and calls again with the round appended to `rounds`). Failures are `ProviderError`s; `before_first_token` says whether
any text had been yielded, so the caller knows a retry could not duplicate text.
Cancelling the consuming task must close the upstream call at once: providers hold
their HTTP stream in an `async with` inside the generator, so the CancelledError that
lands at their await point closes it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from sage.chat.context import ChatContext


@dataclass(frozen=True)
class ChatTurn:
    role: Literal["user", "assistant"]
    content: str


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    estimated: bool = False  # True when the stream stopped before the provider reported final counts

    @property
    def total(self) -> int:
        """What the daily budget counts: every token the provider processed for us."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_creation_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "estimated": self.estimated,
        }


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, what it does, a JSON schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """One `tool_use` block of the model: `arguments` is the raw JSON text it streamed."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model as a `tool_result` block."""

    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class ToolRound:
    """One finished round of tool use: the model's text and calls, and Sage's results."""

    text: str
    calls: tuple[ToolCall, ...]
    results: tuple[ToolResult, ...]


@dataclass(frozen=True)
class ModelRequest:
    system: str  # the live part of the system prompt (time, figures, the user's data): never cached
    turns: Sequence[ChatTurn]  # alternating, starting and ending with a user turn
    max_tokens: int
    context: ChatContext  # the offline provider answers from it; others only see `system`
    deadline: float  # loop.time() by which the whole answer must be done
    metadata_user_id: str | None = None  # an opaque id for the provider's abuse tracking
    instructions: str = ""  # the static part of the system prompt: sent first, cached
    tools: Sequence[ToolSpec] = ()
    rounds: Sequence[ToolRound] = ()  # tool rounds so far in this answer, after the last user turn
    allow_tools: bool = True  # False on the last round: the model must answer in text


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class UsageUpdate:
    usage: Usage


@dataclass(frozen=True)
class Finished:
    stop_reason: str | None
    usage: Usage


@dataclass(frozen=True)
class ToolUse:
    """The model asked for a tool (its block is complete); `Finished("tool_use")` follows."""

    call: ToolCall


ModelEvent = TextDelta | UsageUpdate | ToolUse | Finished


@dataclass
class ProviderError(Exception):
    """A provider failure the chat turns into an `error` SSE event.

    `code` is stable and safe to show (`overloaded`, `rate_limited`, `timeout`, ...);
    `message` never holds secrets or raw upstream bodies.
    """

    code: str
    message: str
    retryable: bool = False
    retry_after: float | None = None
    before_first_token: bool = True
    status: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ChatModel(Protocol):
    """What the chat service needs from a provider."""

    @property
    def name(self) -> str:
        """Provider name stored in message metadata: `anthropic`, `offline`."""
        ...

    @property
    def model(self) -> str: ...

    @property
    def offline(self) -> bool: ...

    def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]: ...

    async def aclose(self) -> None: ...
