"""The chat service: answering a question as a resumable stream, and controlling answers.

`ask()` (and `regenerate()` / `edit()`, which answer the last turn again) does everything that can refuse a question before the response starts (the
chat's owner, rate limit, daily budget, a place in the model queue), stores the user's
message, and starts an `AnswerRun`; the caller streams its events. `resume()` serves a
reconnect: the stored message once the answer is saved, else the live run on this task,
else the Valkey buffer of a run on another task.
`stop()` cancels an answer on whichever task runs it (controls.ControlChannel). Reading and
writing chats themselves is `ChatLibrary`'s job (`self.library`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sage.chat import repository as repo
from sage.chat.answer import AnswerDeps, AnswerJob, AnswerRun
from sage.chat.cache import AnswerCache
from sage.chat.context import ContextBuilder
from sage.chat.controls import ControlChannel
from sage.chat.grounding import GroundingStats
from sage.chat.instructions import STATIC_INSTRUCTIONS
from sage.chat.library import ChatLibrary
from sage.chat.limits import ChatLimits, ModelCallLimiter
from sage.chat.outcome import opaque_user_id
from sage.chat.providers.base import ChatModel, ChatTurn, ModelRequest
from sage.chat.resume import once_stored, stored_events, stream_lost
from sage.chat.sse import ResumePoint, StreamItems
from sage.chat.streaming import BufferUnavailable, EventLog, ReaderLease
from sage.chat.tools.base import ToolBox
from sage.errors import Conflict, NotFound, Unavailable
from sage.market.reader import MarketReader
from sage.observability.metrics import Metrics
from sage.portfolio.service import PortfolioService
from sage.settings import Settings
from sage.store.cache import Cache
from sage.store.chat_tables import Chat, ChatMessage
from sage.store.db import Database
from sage.store.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# While the process hands its answers over at shutdown, this much of the grace period is
# kept back for cutting short what is still running and storing it.
HANDOVER_SAVE_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class AnswerStream:
    """One reader's view of an answer: which answer, and its events."""

    chat_id: uuid.UUID
    message_id: uuid.UUID
    items: StreamItems


class ChatService:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        cache: Cache,
        metrics: Metrics,
        limiter: RateLimiter,
        model: ChatModel,
        market: MarketReader,
        portfolio: PortfolioService | None,
        tools: ToolBox | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.cache = cache
        self.metrics = metrics
        self.model = model
        self.tools = tools
        self.calls = ModelCallLimiter(settings.llm_max_concurrency, settings.llm_queue_size, metrics)
        self.limits = ChatLimits(
            limiter, rate_per_minute=settings.chat_rate_per_minute, daily_token_budget=settings.chat_daily_token_budget
        )
        self.contexts = ContextBuilder(
            market=market,
            portfolio=portfolio.summary if portfolio is not None else None,
            top_symbols=settings.symbols,
        )
        self.answers = AnswerCache(cache, cache.ttl.ai_response)
        self.grounding = GroundingStats(metrics)
        # Bounds the Valkey work answers do in bursts (buffer writes, list invalidation,
        # cache fills), e.g. a thousand streams finishing together when clients drop.
        self.valkey_slots = asyncio.Semaphore(16)
        self.events = EventLog(
            cache,
            ttl=settings.chat_request_deadline_seconds + settings.chat_buffer_keep_seconds,
            keepalive=settings.sse_keepalive_seconds,
            slots=self.valkey_slots,
        )
        self.library = ChatLibrary(settings=settings, db=db, cache=cache, slots=self.valkey_slots)
        self.runs: dict[uuid.UUID, AnswerRun] = {}
        self.controls = ControlChannel(
            cache,
            self._on_command,
            lambda: [(str(m), str(r.job.chat_id)) for m, r in self.runs.items()],
        )
        self.active_streams = 0
        self._closing = False
        self._handover_started: float | None = None  # loop time the process began shutting down
        # as long as an answer may take and its write may be retried: how long a reader that
        # cannot read Valkey waits for the stored answer
        self._stored_wait = settings.chat_request_deadline_seconds + settings.chat_buffer_keep_seconds

    # -- chats (reading and writing them is ChatLibrary's job) -----------------------------------------
    async def delete_chat(self, user_id: uuid.UUID, chat_id: uuid.UUID) -> None:
        async with self.db.session() as session:
            removed = await repo.delete_chat(session, user_id=user_id, chat_id=chat_id)
            await session.commit()
        if not removed:
            raise NotFound("Chat not found")
        self._cancel_chat(chat_id)
        await self.controls.send({"chat_id": str(chat_id)})  # answers of this chat on other tasks
        await self.library.invalidate_list(user_id)

    def _cancel_chat(self, chat_id: uuid.UUID) -> None:
        for run in list(self.runs.values()):
            if run.job.chat_id == chat_id:
                run.cancel("chat_deleted")

    def _on_command(self, command: dict[str, Any]) -> None:
        """A command from any task (see controls): stop one answer, or a deleted chat's answers."""
        try:
            if "stop" in command:
                run = self.runs.get(uuid.UUID(str(command["stop"])))
                if run is not None:
                    run.cancel("stopped")
            elif "chat_id" in command:
                self._cancel_chat(uuid.UUID(str(command["chat_id"])))
        except ValueError:
            log.warning("malformed chat control command ignored")

    async def stop(self, user_id: uuid.UUID, chat_id: uuid.UUID, message_id: uuid.UUID) -> dict[str, Any]:
        """Stop an answer in progress on whichever task runs it; its partial text is saved as `stopped`."""
        async with self.db.session() as session:
            if await repo.get_chat(session, user_id=user_id, chat_id=chat_id) is None:
                raise NotFound("Chat not found")
            stored = await repo.get_message(session, chat_id=chat_id, message_id=message_id)
        if stored is not None:
            if stored.role != "assistant":
                raise NotFound("No answer with this id")
            raise Conflict("The answer has already finished", details={"status": stored.status})
        run = self.runs.get(message_id)
        if run is not None and run.job.chat_id == chat_id:
            run.cancel("stopped")
            return {"message_id": str(message_id), "status": "stopping"}
        meta = await self.events.meta(message_id)
        if meta is None or meta.get("chat_id") != str(chat_id) or meta.get("user_id") != str(user_id):
            raise NotFound("No answer in progress with this id")
        await self.controls.send({"stop": str(message_id)})
        return {"message_id": str(message_id), "status": "stopping"}

    # -- answering -------------------------------------------------------------------------------------
    async def ask(self, user_id: uuid.UUID, chat_id: uuid.UUID, text: str) -> AnswerStream:
        """Refuse now (404, 429, 503) or store the question, start the answer, return its stream."""
        received = self._received()
        async with self.db.session() as session:
            chat = await self._chat(session, user_id, chat_id)
            earlier = await repo.history(session, chat_id=chat_id, limit=self.settings.chat_history_messages)
            first_message = await repo.count_messages(session, chat_id=chat_id) == 0
        title = repo.title_from(text) if first_message and chat.title == repo.DEFAULT_TITLE else None
        return await self._start(user_id, chat_id, text, earlier, received, new_question={}, title=title)

    async def regenerate(self, user_id: uuid.UUID, chat_id: uuid.UUID, message_id: uuid.UUID) -> AnswerStream:
        """A new answer to the chat's last question, bypassing the answer cache; the earlier
        answer stays as a version of the turn (GET .../versions)."""
        received = self._received()
        async with self.db.session() as session:
            await self._chat(session, user_id, chat_id)
            answer, question = await self._last_turn(session, chat_id)
            if answer is None or answer.id != message_id:
                raise Conflict(
                    "Only the chat's latest answer can be regenerated", details={"message_id": str(message_id)}
                )
            earlier = await repo.history(
                session, chat_id=chat_id, limit=self.settings.chat_history_messages, before_seq=question.seq
            )
        return await self._start(
            user_id, chat_id, question.content, earlier, received, question_id=question.id, supersede=[answer.id]
        )

    async def edit(self, user_id: uuid.UUID, chat_id: uuid.UUID, message_id: uuid.UUID, text: str) -> AnswerStream:
        """Replace the chat's last question and answer it again; the previous exchange stays as a version."""
        received = self._received()
        async with self.db.session() as session:
            await self._chat(session, user_id, chat_id)
            answer, question = await self._last_turn(session, chat_id)
            if question.id != message_id:
                raise Conflict("Only the chat's latest question can be edited", details={"message_id": str(message_id)})
            earlier = await repo.history(
                session, chat_id=chat_id, limit=self.settings.chat_history_messages, before_seq=question.seq
            )
        turn = {"turn": str(question.meta.get("turn") or question.id), "edited_from": str(question.id)}
        replaced = [question.id] + ([answer.id] if answer is not None else [])
        return await self._start(user_id, chat_id, text, earlier, received, new_question=turn, supersede=replaced)

    def _received(self) -> float:
        if self._closing:
            raise Unavailable("Sage is restarting; please ask again in a moment", retry_after=5)
        return asyncio.get_running_loop().time()

    @staticmethod
    async def _chat(session: Any, user_id: uuid.UUID, chat_id: uuid.UUID) -> Chat:
        chat = await repo.get_chat(session, user_id=user_id, chat_id=chat_id)
        if chat is None:
            raise NotFound("Chat not found")
        return chat

    async def _last_turn(self, session: Any, chat_id: uuid.UUID) -> tuple[ChatMessage | None, ChatMessage]:
        """The chat's last question and its stored answer (None while none is stored)."""
        if any(run.job.chat_id == chat_id for run in self.runs.values()):
            raise Conflict("An answer is still being written in this chat; wait for it or stop it first")
        newest = await repo.last_messages(session, chat_id=chat_id, count=2)
        if newest and newest[0].role == "user":
            # no stored answer: it may still be written on another task, until its deadline
            settled = datetime.now(UTC) - timedelta(seconds=self.settings.chat_request_deadline_seconds + 30)
            if newest[0].created_at > settled:
                raise Conflict("An answer is still being written in this chat; wait for it or stop it first")
            return None, newest[0]
        if len(newest) == 2 and newest[1].role == "user" and newest[0].reply_to_id == newest[1].id:
            return newest[0], newest[1]
        raise Conflict("This chat has no question to answer again")

    async def _start(
        self,
        user_id: uuid.UUID,
        chat_id: uuid.UUID,
        text: str,
        earlier: list[ChatTurn],
        received: float,
        *,
        new_question: dict[str, Any] | None = None,  # store a new question with this metadata
        question_id: uuid.UUID | None = None,  # or answer a stored question again (cache bypassed)
        supersede: list[uuid.UUID] | None = None,
        title: str | None = None,
    ) -> AnswerStream:
        settings = self.settings
        async with self.db.session() as session:
            used_today = await repo.tokens_used(session, user_id=user_id, day=datetime.now(UTC).date())
        await self.limits.take_request(user_id)
        self.limits.check_budget(used_today)
        context = await self.contexts.build(user_id=user_id, question=text)
        cache_key = self.answers.key(
            question=text,
            fingerprint=context.fingerprint(),
            history=earlier,
            provider=self.model.name,
            model=self.model.model,
        )
        cached = await self.answers.get(cache_key) if question_id is None else None
        ticket = None if cached is not None else self.calls.reserve()
        user_message_id, message_id = question_id or uuid.uuid4(), uuid.uuid4()
        try:
            async with self.db.session() as session:
                if new_question is not None:
                    await repo.add_message(
                        session,
                        message_id=user_message_id,
                        chat_id=chat_id,
                        role="user",
                        content=text,
                        status="complete",
                        meta={"mentioned": list(context.mentioned), **new_question},
                    )
                await repo.supersede(session, message_ids=supersede or [])
                await repo.touch_chat(session, chat_id=chat_id, title=title)
                await session.commit()
        except BaseException:
            if ticket is not None:
                ticket.release()
            raise
        await self.library.invalidate_list(user_id)
        self.controls.start()
        deadline = received + settings.chat_request_deadline_seconds
        job = AnswerJob(
            chat_id=chat_id,
            user_id=user_id,
            user_message_id=user_message_id,
            message_id=message_id,
            question=text,
            context=context,
            request=ModelRequest(
                system=context.system_prompt(),
                instructions=STATIC_INSTRUCTIONS,
                tools=self.tools.specs if self.tools is not None else (),
                turns=_turns(earlier, text),
                max_tokens=settings.llm_max_tokens,
                context=context,
                deadline=deadline,
                metadata_user_id=opaque_user_id(user_id),
            ),
            received_at=received,
            deadline=deadline,
            queue_timeout=settings.llm_queue_timeout_seconds,
            ticket=ticket,
            cached=cached,
            cache_key=cache_key,
            budget_left=max(0, settings.chat_daily_token_budget - used_today),
        )
        run = AnswerRun(job, self._deps())
        self.runs[message_id] = run
        run.start()
        return AnswerStream(chat_id, message_id, self._counted(run.follow(0)))

    def _deps(self) -> AnswerDeps:
        async def saved(run: AnswerRun) -> None:
            await self.library.invalidate_list(run.job.user_id)

        def finished(run: AnswerRun) -> None:
            self.runs.pop(run.message_id, None)

        return AnswerDeps(
            db=self.db,
            metrics=self.metrics,
            model=self.model,
            grounding=self.grounding,
            answer_cache=self.answers,
            events=self.events,
            keepalive=self.settings.sse_keepalive_seconds,
            store_window=self.settings.chat_buffer_keep_seconds,
            on_saved=saved,
            on_finished=finished,
            tools=self.tools,
            max_tool_rounds=self.settings.chat_max_tool_rounds,
            orphan_grace=self.settings.chat_orphan_grace_seconds,
        )

    async def resume(
        self, user_id: uuid.UUID, chat_id: uuid.UUID, message_id: uuid.UUID, last: ResumePoint | None
    ) -> AnswerStream:
        """The rest of an answer after `last`: stored, live here, or live on another task."""
        return AnswerStream(chat_id, message_id, await self._resumed_items(user_id, chat_id, message_id, last))

    async def _resumed_items(
        self, user_id: uuid.UUID, chat_id: uuid.UUID, message_id: uuid.UUID, last: ResumePoint | None
    ) -> StreamItems:
        async with self.db.session() as session:
            if await repo.get_chat(session, user_id=user_id, chat_id=chat_id) is None:
                raise NotFound("Chat not found")
            stored = await repo.get_message(session, chat_id=chat_id, message_id=message_id)
        if stored is not None:
            if stored.role != "assistant":
                raise NotFound("No answer stream for this message")
            return self._counted(stored_events(stored, last))
        run = self.runs.get(message_id)
        if run is not None and run.job.chat_id == chat_id:
            return self._counted(run.follow(last.seq if last else 0))
        try:
            meta = await self.events.meta(message_id)
        except BufferUnavailable:
            # Valkey is down: the answer (if it is one) is stored when done; wait for it there
            return self._counted(
                once_stored(
                    self.db,
                    chat_id,
                    message_id,
                    last,
                    wait=self._stored_wait,
                    keepalive=self.settings.sse_keepalive_seconds,
                )
            )
        if meta is not None and meta.get("chat_id") == str(chat_id) and meta.get("user_id") == str(user_id):
            # The lease is taken now, before the response starts: a client that sees this stream
            # open may drop its old one at once, and the answer's task must then find a reader.
            lease = await self.events.take_reader_lease(message_id)
            return self._counted(self._from_buffer(chat_id, message_id, last, lease))
        raise NotFound("No answer stream for this message")

    async def _from_buffer(
        self, chat_id: uuid.UUID, message_id: uuid.UUID, last: ResumePoint | None, lease: ReaderLease | None
    ) -> StreamItems:
        """An answer live on another task, through Valkey; from storage if Valkey goes away."""
        try:
            async for item in self.events.follow(
                message_id,
                last.seq if last else 0,
                last.chars if last else 0,
                lease=lease,
                on_gone=stream_lost(message_id),
            ):
                yield item
        except BufferUnavailable as lost:
            reached = ResumePoint(lost.seq, lost.chars) if lost.seq else None
            async for item in once_stored(
                self.db,
                chat_id,
                message_id,
                reached,
                wait=self._stored_wait,
                keepalive=self.settings.sse_keepalive_seconds,
            ):
                yield item

    async def _counted(self, items: StreamItems) -> StreamItems:
        self.active_streams += 1
        self.metrics.gauge("ActiveStreams", float(self.active_streams))
        try:
            async with contextlib.aclosing(items):
                async for item in items:
                    yield item
        finally:
            self.active_streams -= 1
            self.metrics.gauge("ActiveStreams", float(self.active_streams))

    def hand_over(self) -> None:
        """Shutdown began and every stream is being told to resume on another task: refuse
        new questions, and keep the answers running (their readers will be back through
        Valkey) instead of cancelling them as abandoned."""
        self._closing = True
        if self._handover_started is None:
            self._handover_started = asyncio.get_running_loop().time()
        for run in self.runs.values():
            run.hand_over()

    async def close(self) -> None:
        """Stop answering. After a hand-over, answers may finish (and be stored) while the
        grace period lasts; whatever still runs then is cut short, its partial answer saved."""
        self._closing = True
        grace = self.settings.shutdown_grace_seconds
        if self._handover_started is not None and self.runs:
            elapsed = asyncio.get_running_loop().time() - self._handover_started
            remaining = grace - elapsed - min(HANDOVER_SAVE_MARGIN_SECONDS, grace / 3)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await asyncio.gather(
                            *(r.wait_closed() for r in list(self.runs.values())), return_exceptions=True
                        )
        runs = list(self.runs.values())
        for run in runs:
            run.cancel("server_shutdown")
        if runs:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(1.0, grace)):
                    await asyncio.gather(*(run.wait_closed() for run in runs), return_exceptions=True)
        await self.controls.close()
        await self.model.aclose()


def _turns(earlier: list[ChatTurn], question: str) -> list[ChatTurn]:
    if earlier and earlier[-1].role == "user":
        return [*earlier[:-1], ChatTurn("user", earlier[-1].content + "\n\n" + question)]
    return [*earlier, ChatTurn("user", question)]
