"""The model rounds of one answer: call the model, run the tools it asks for, call again.

Each round streams text (to the answer's channel) and may end with `stop_reason:
tool_use`; the round's calls then run concurrently as the asking user, each becomes a
`tool` event (stored with the message, so resume replays it) and a `tool_result` for the
next round. The round after SAGE_CHAT_MAX_TOOL_ROUNDS, or after the answer has used what
was left of the user's daily budget, offers no tools: the model answers with what it has.
Usage adds up over rounds; tool time counts toward the answer's deadline (the caller runs
the whole loop inside it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace
from typing import Any, Protocol

from sage.chat.providers.base import (
    ChatModel,
    Finished,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolRound,
    ToolUse,
    Usage,
    UsageUpdate,
)
from sage.chat.sse import TOOL, StreamEvent
from sage.chat.tools.base import ToolBox, ToolCaller, ToolOutcome
from sage.observability.metrics import Metrics


class Progress(Protocol):
    """What the rounds update on the answer (sage.chat.answer keeps it)."""

    usage: Usage  # every round so far, the current one included
    spent: Usage  # rounds already finished
    stop_reason: str | None
    tool_outcomes: list[ToolOutcome]
    tool_events: list[dict[str, Any]]


class ModelRounds:
    def __init__(
        self,
        *,
        model: ChatModel,
        tools: ToolBox | None,
        max_rounds: int,
        progress: Progress,
        emit: Callable[[str], None],
        publish: Callable[..., StreamEvent],
        metrics: Metrics,
        caller: ToolCaller,
        deadline: float,
        budget_left: int | None,
    ) -> None:
        self.model = model
        self.tools = tools
        self.max_rounds = max_rounds
        self.progress = progress
        self.emit = emit
        self.publish = publish
        self.metrics = metrics
        self.caller = caller
        self.deadline = deadline
        self.budget_left = budget_left

    async def run(self, request: ModelRequest) -> None:
        tools = self.tools
        rounds: list[ToolRound] = []
        while True:
            allow = tools is not None and len(rounds) < self.max_rounds and not self._over_budget()
            calls, text = await self._round(replace(request, rounds=tuple(rounds), allow_tools=allow))
            if not allow or self.progress.stop_reason != "tool_use" or not calls or tools is None:
                return  # answered in text (or asked for tools it was not offered: never loop on that)
            outcomes = await self._run_tools(tools, calls, len(rounds) + 1)
            rounds.append(ToolRound(text, tuple(calls), tuple(o.result for o in outcomes)))

    def _over_budget(self) -> bool:
        return self.budget_left is not None and self.progress.usage.total >= self.budget_left

    async def _round(self, request: ModelRequest) -> tuple[list[ToolCall], str]:
        progress = self.progress
        progress.spent = progress.usage
        calls: list[ToolCall] = []
        text: list[str] = []
        async with aclosing(self.model.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    self.emit(event.text)
                    text.append(event.text)
                    # the readers' turn: a network chunk often holds several events, and the
                    # reader woken by this one should write it to its socket before the
                    # provider parses the rest (measured: ~0.2 ms off the first token)
                    await asyncio.sleep(0)
                elif isinstance(event, ToolUse):
                    calls.append(event.call)
                elif isinstance(event, UsageUpdate):
                    progress.usage = plus(progress.spent, event.usage)
                elif isinstance(event, Finished):
                    progress.usage = plus(progress.spent, event.usage)
                    progress.stop_reason = event.stop_reason
        return calls, "".join(text)

    async def _run_tools(self, tools: ToolBox, calls: list[ToolCall], round_no: int) -> list[ToolOutcome]:
        outcomes = await asyncio.gather(*(tools.run(call, self.caller, deadline=self.deadline) for call in calls))
        for outcome in outcomes:
            data: dict[str, Any] = {**outcome.event(), "round": round_no}
            event = self.publish(TOOL, data)
            self.progress.tool_outcomes.append(outcome)
            self.progress.tool_events.append({**data, "seq": event.seq})
            status = "error" if outcome.is_error else "ok"
            self.metrics.incr("ChatToolCalls", tool=outcome.call.name, status=status)
            self.metrics.observe("ChatToolLatency", outcome.duration_ms, tool=outcome.call.name)
        return list(outcomes)


def plus(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
        cache_creation_tokens=a.cache_creation_tokens + b.cache_creation_tokens,
    )
