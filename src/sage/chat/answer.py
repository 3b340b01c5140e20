"""One answer being produced: the task between the model and the readers of its stream.

An `AnswerRun` runs in its own task, not in the request that asked: readers attach to
its channel (the POST that asked, reconnects on this task, and readers on other tasks
through Valkey). When the last reader goes, the run checks for readers elsewhere and,
finding none, cancels itself at once, which closes the upstream model call. Whatever
ends the run (done, error, deadline, cancellation, shutdown), `_finalize` saves the
assistant message exactly once, with its partial text when it was cut short.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sage.chat.answer_store import FinishedAnswer, StoreResult, store_answer
from sage.chat.cache import AnswerCache, CachedAnswer
from sage.chat.context import ChatContext
from sage.chat.grounding import GroundingResult, GroundingStats, check_answer
from sage.chat.limits import QueueTimeout, Ticket
from sage.chat.outcome import CANCEL_MESSAGES, AnswerRecord, Outcome
from sage.chat.providers.base import ChatModel, ModelRequest, ProviderError, Usage
from sage.chat.sse import DELTA, ERROR, MESSAGE, StreamEvent
from sage.chat.streaming import AnswerChannel, EventLog
from sage.chat.tool_loop import ModelRounds
from sage.chat.tools.base import ToolBox, ToolCaller, ToolOutcome
from sage.observability.metrics import Metrics
from sage.store.db import Database

log = logging.getLogger(__name__)

ABANDON_POLL_SECONDS = 1.0


@dataclass
class AnswerJob:
    chat_id: uuid.UUID
    user_id: uuid.UUID
    user_message_id: uuid.UUID
    message_id: uuid.UUID
    question: str
    context: ChatContext
    request: ModelRequest
    received_at: float  # loop time the question arrived
    deadline: float  # loop time by which the answer must be done (queueing included)
    queue_timeout: float
    ticket: Ticket | None = None  # None for cached answers: they call no model
    cached: CachedAnswer | None = None
    cache_key: str | None = None
    budget_left: int | None = None  # the user's daily tokens left when asked: tool rounds stop there


@dataclass
class AnswerDeps:
    db: Database
    metrics: Metrics
    model: ChatModel
    grounding: GroundingStats
    answer_cache: AnswerCache
    events: EventLog
    keepalive: float
    store_window: float  # seconds the answer's buffer outlives its last event: how long a save may retry
    on_saved: Callable[[AnswerRun], Any]  # awaited after the message is stored
    on_finished: Callable[[AnswerRun], None]
    tools: ToolBox | None = None
    max_tool_rounds: int = 6
    orphan_grace: float = 0.0  # seconds an answer with no reader keeps running


@dataclass
class _Progress:
    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)  # every model round so far, the current one included
    spent: Usage = field(default_factory=Usage)  # rounds already finished
    tool_outcomes: list[ToolOutcome] = field(default_factory=list)  # in call order (grounding reads them)
    tool_events: list[dict[str, Any]] = field(default_factory=list)  # stored with the message, replayed on resume
    stop_reason: str | None = None
    first_token_at: float | None = None
    queued_seconds: float = 0.0


class AnswerRun:
    def __init__(self, job: AnswerJob, deps: AnswerDeps) -> None:
        self.job = job
        self.deps = deps
        self.channel = AnswerChannel(job.message_id)
        self.progress = _Progress()
        self.saved = False
        self.finishing = False
        self.cancel_reason: str | None = None
        self.handing_over = False  # shutdown: readers were sent elsewhere; finish rather than cancel
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None
        self._finalizer: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._started = False

    @property
    def message_id(self) -> uuid.UUID:
        return self.job.message_id

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    def start(self) -> None:
        mirror: asyncio.Queue[StreamEvent | None] = asyncio.Queue()
        self.channel.mirror_to(mirror)
        self.writer = _keep(asyncio.create_task(self._mirror(mirror), name=f"chat-mirror-{self.message_id}"))
        self.task = _keep(asyncio.create_task(self._main(), name=f"chat-answer-{self.message_id}"))

    async def _mirror(self, queue: asyncio.Queue[StreamEvent | None]) -> None:
        meta = {
            "chat_id": str(self.job.chat_id),
            "user_id": str(self.job.user_id),
            "user_message_id": str(self.job.user_message_id),
        }
        await self.deps.events.write_loop(self.message_id, queue, meta)

    # -- readers ------------------------------------------------------------------------------------
    async def follow(self, after_seq: int) -> AsyncGenerator[StreamEvent | None, None]:
        self.channel.consumers += 1
        try:
            async for item in self.channel.follow(after_seq, self.deps.keepalive):
                yield item
        finally:
            self.channel.consumers -= 1
            if self.channel.consumers <= 0 and not self.finishing and not self.done and not self.handing_over:
                self._spawn(self._cancel_if_abandoned())

    async def _cancel_if_abandoned(self) -> None:
        """No reader here: keep answering for the orphan grace period, then cancel unless a
        reader came back (here, or on another task holding a lease in Valkey).

        A reload or a flaky network must not kill the answer: a reconnect within the grace
        period resumes it. An explicit stop and chat deletion cancel at once elsewhere; an
        answer being handed over at shutdown is not abandoned."""
        grace = self.deps.orphan_grace
        give_up = self._loop.time() + grace
        while not self.finishing and not self.done and not self.handing_over and self.channel.consumers <= 0:
            # None (Valkey cannot tell) counts as a reader: one may be waiting for the stored answer
            if await self.deps.events.any_reader(self.message_id) is not False:
                give_up = self._loop.time() + grace
            elif self._loop.time() >= give_up:
                self.cancel("client_disconnected")
                return
            await asyncio.sleep(min(ABANDON_POLL_SECONDS, max(0.0, give_up - self._loop.time())) or 0.01)

    def hand_over(self) -> None:
        """The process is shutting down and its readers were told to resume elsewhere:
        keep producing into the buffer they will read, and store the answer when done."""
        self.handing_over = True

    def cancel(self, reason: str) -> None:
        if self.task is None or self.task.done() or self.finishing:
            return
        if not self._started:
            # a task cancelled before its first step never runs its body (nor its save):
            # let it start, then cancel
            self._loop.call_soon(self.cancel, reason)
            return
        self.cancel_reason = reason
        self.task.cancel()

    def _spawn(self, coro: Any) -> None:
        _keep(asyncio.create_task(coro))

    async def wait_closed(self) -> None:
        for task in (self.task, self._finalizer, self.writer):
            if task is not None:
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: S110 - each task logs its own failure
                    pass

    # -- producing --------------------------------------------------------------------------------
    async def _main(self) -> None:
        self._started = True
        job = self.job
        model = self.deps.model
        self.channel.publish(
            MESSAGE,
            {
                "chat_id": str(job.chat_id),
                "user_message_id": str(job.user_message_id),
                "assistant_message_id": str(job.message_id),
                "cached": job.cached is not None,
                "provider": job.cached.provider if job.cached else model.name,
                "model": job.cached.model if job.cached else model.model,
            },
        )
        try:
            async with asyncio.timeout_at(job.deadline):
                if job.cached is not None:
                    await self._replay(job.cached)
                else:
                    await self._queue(job)
                    await self._generate(job.request)
            outcome = Outcome(
                "incomplete" if self.progress.stop_reason == "max_tokens" else "complete",
                stop_reason=self.progress.stop_reason,
            )
        except QueueTimeout:
            outcome = Outcome(
                "error", "queue_timeout", "Sage was too busy to start your answer in time; please try again."
            )
        except TimeoutError:
            outcome = Outcome("error", "deadline_exceeded", "The answer took too long and was stopped.")
        except ProviderError as exc:
            outcome = Outcome("error", exc.code, exc.message, retry_after=exc.retry_after)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            reason = self.cancel_reason or "cancelled"
            if reason == "stopped":  # the user pressed stop: a normal end, the partial answer kept
                outcome = Outcome("stopped", stop_reason="stopped")
            else:
                outcome = Outcome("incomplete", reason, CANCEL_MESSAGES.get(reason, "The answer was stopped."))
        except Exception:
            log.exception("chat answer failed", extra={"message_id": str(job.message_id)})
            outcome = Outcome("error", "internal_error", "Sage failed while answering; please try again.")
        finally:
            if job.ticket is not None:
                job.ticket.release()
        self.finishing = True
        self._finalizer = _keep(
            asyncio.create_task(self._finalize_once(outcome), name=f"chat-finalize-{job.message_id}")
        )
        try:
            await asyncio.shield(self._finalizer)
        finally:
            self.deps.on_finished(self)

    async def _queue(self, job: AnswerJob) -> None:
        if job.ticket is None:
            return
        remaining = job.deadline - self._loop.time()
        try:
            await job.ticket.acquire(min(job.queue_timeout, remaining))
        finally:
            self.progress.queued_seconds = job.ticket.queued_seconds

    def _emit(self, text: str) -> None:
        if self.progress.first_token_at is None:
            self.progress.first_token_at = self._loop.time()
        self.progress.parts.append(text)
        self.channel.publish(DELTA, {"text": text}, text=text)

    async def _generate(self, request: ModelRequest) -> None:
        deps = self.deps
        await ModelRounds(
            model=deps.model,
            tools=deps.tools,
            max_rounds=deps.max_tool_rounds,
            progress=self.progress,
            emit=self._emit,
            publish=self.channel.publish,
            metrics=deps.metrics,
            caller=ToolCaller(user_id=self.job.user_id, now=datetime.now(UTC)),
            deadline=self.job.deadline,
            budget_left=self.job.budget_left,
        ).run(request)

    async def _replay(self, cached: CachedAnswer) -> None:
        for chunk in cached.chunks:
            self._emit(chunk)
            await asyncio.sleep(0)
        self.progress.stop_reason = "end_turn"

    # -- finishing ---------------------------------------------------------------------------------
    def _final_usage(self, text: str, outcome: Outcome) -> Usage:
        usage = self.progress.usage
        if self.job.cached is not None:
            return Usage()
        if outcome.status != "complete" and text and not self.deps.model.offline:
            # the provider's final count never came: charge at least what we received
            estimate = math.ceil(len(text) / 4)
            if usage.output_tokens < estimate:
                usage = Usage(**{**usage.__dict__, "output_tokens": estimate, "estimated": True})
        return usage

    async def _finalize_once(self, outcome: Outcome) -> None:
        try:
            await self._finalize(outcome)
        except Exception:
            log.exception("finishing the answer failed", extra={"message_id": str(self.job.message_id)})
        finally:
            if not self.channel.closed:  # readers must never wait for a terminal event that cannot come
                if not self.channel.events or not self.channel.events[-1].terminal:
                    self.channel.publish(
                        ERROR,
                        {
                            "message_id": str(self.job.message_id),
                            "status": "error",
                            "code": "internal_error",
                            "message": "Sage failed while answering; please try again.",
                        },
                    )
                self.channel.close()

    async def _finalize(self, outcome: Outcome) -> None:
        job, deps, progress = self.job, self.deps, self.progress
        text = "".join(progress.parts)
        now = self._loop.time()
        cached = job.cached
        usage = self._final_usage(text, outcome)
        if cached is not None:
            grounding_data = dict(cached.grounding)
            unverified = list(cached.unverified_claims)
        else:
            facts = job.context.facts()
            for tool_outcome in progress.tool_outcomes:
                if tool_outcome.ground is not None:
                    tool_outcome.ground(facts)
            result = check_answer(text, facts, question=job.question) if text else GroundingResult(())
            grounding_data = result.as_dict()
            unverified = result.spans()
            deps.grounding.record(result)
        latency = {
            "first_token": None
            if progress.first_token_at is None
            else round((progress.first_token_at - job.received_at) * 1000, 2),
            "total": round((now - job.received_at) * 1000, 2),
            "queued": round(progress.queued_seconds * 1000, 2),
        }
        record = AnswerRecord(
            message_id=job.message_id,
            outcome=outcome,
            provider=cached.provider if cached else deps.model.name,
            model=cached.model if cached else deps.model.model,
            offline=deps.model.offline and cached is None,
            cached=cached is not None,
            cached_from=cached.source_message_id if cached else None,
            usage=usage,
            latency_ms=latency,
            grounding=grounding_data,
            unverified_claims=unverified,
            context=job.context.snapshot(),
            tools=list(progress.tool_events),
        )
        provider, model_name = record.provider, record.model
        terminal_event, terminal = record.terminal()
        meta = record.metadata()
        stored = await self._save(text, outcome.status, meta, usage)
        self._record_metrics(outcome, usage, latency, provider)
        if stored is StoreResult.NOT_STORED:
            # the client has the text, but a reload would not: say so instead of `done`
            terminal_event, terminal = (
                ERROR,
                {
                    "message_id": str(job.message_id),
                    "status": "error",
                    "code": "answer_not_stored",
                    "message": "Sage could not save this answer, so it will not be in the chat; please ask again.",
                },
            )
        # an answer that used tools is never replayed: its figures came from calls the cache
        # cannot repeat (a range relative to now), and replaying must not skip a side effect
        # such as creating an alert
        if (
            stored is StoreResult.STORED
            and not progress.tool_events
            and cached is None
            and job.cache_key is not None
            and outcome.status == "complete"
            and text
            and not unverified
        ):
            async with deps.events.slots:
                await deps.answer_cache.put(
                    job.cache_key,
                    CachedAnswer(
                        chunks=list(progress.parts),
                        provider=provider,
                        model=model_name,
                        grounding=grounding_data,
                        unverified_claims=[],
                        source_message_id=str(job.message_id),
                    ),
                )
        self.channel.publish(terminal_event, terminal)
        self.channel.close()

    async def _save(self, text: str, status: str, meta: dict[str, Any], usage: Usage) -> StoreResult:
        """Store the answer, waiting out a database outage for as long as its buffer lives."""
        job = self.job
        result = await store_answer(
            self.deps.db,
            self.deps.metrics,
            FinishedAnswer(
                message_id=job.message_id,
                chat_id=job.chat_id,
                user_id=job.user_id,
                reply_to_id=job.user_message_id,
                content=text,
                status=status,
                meta=meta,
                usage=None if job.cached is not None else usage,
            ),
            until=self._loop.time() + self.deps.store_window,
        )
        if result is StoreResult.STORED:
            self.saved = True
            try:
                await self.deps.on_saved(self)
            except Exception:
                log.exception("post-save hook failed")
        return result

    def _record_metrics(self, outcome: Outcome, usage: Usage, latency: dict[str, Any], provider: str) -> None:
        metrics = self.deps.metrics
        cached = "true" if self.job.cached is not None else "false"
        if latency["first_token"] is not None:
            metrics.observe("FirstTokenLatency", latency["first_token"], provider=provider, cached=cached)
        metrics.observe("ChatTotalLatency", latency["total"], provider=provider, cached=cached)
        metrics.incr("ChatAnswers", provider=provider, cached=cached, status=outcome.status)
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_creation", usage.cache_creation_tokens),
        ):
            if count:
                metrics.incr("TokensUsed", count, kind=kind)


# asyncio keeps only weak references to tasks: background work is held here until it ends
_BACKGROUND: set[asyncio.Task[Any]] = set()


def _keep(task: asyncio.Task[Any]) -> asyncio.Task[Any]:
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task
