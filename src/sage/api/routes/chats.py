"""Chats and streamed answers (Server-Sent Events, through sage.api.sse's one response).

When the process starts shutting down, an open answer stream ends with a `reconnect` event
naming the resume URL and the last event id, so the client continues on another task
while this one finishes the answer into the shared buffer.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, computed_field

from sage.api.deps import ChatDep, CurrentUser
from sage.api.openapi import error_responses
from sage.api.schemas import INT64_MAX, NOT_BLANK_PATTERN, RequestModel
from sage.api.sse import RETRY_MS, EventStreamResponse, Frames, stream_drain
from sage.chat.repository import TITLE_MAX
from sage.chat.service import AnswerStream
from sage.chat.sse import parse_last_event_id

router = APIRouter(prefix="/chats", tags=["chats"])
usage_router = APIRouter(prefix="/users/me", tags=["chats"])

# Length and blankness are checked on the text as sent (so the schema states the rule exactly);
# the title is stored stripped.
Title = Annotated[
    str, StringConstraints(min_length=1, max_length=TITLE_MAX, pattern=NOT_BLANK_PATTERN), AfterValidator(str.strip)
]

_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`text/event-stream`: events `message`, `delta`, `tool`, `done`, `error`, each with an id; "
        "keep-alive comments every SAGE_SSE_KEEPALIVE_SECONDS; `reconnect` (resume URL and last event id) "
        "when the server shuts down mid-answer.",
        "content": {"text/event-stream": {}},
    }
}


def answer_response(request: Request, stream: AnswerStream) -> EventStreamResponse:
    """An answer's events as SSE; at shutdown, a `reconnect` event after the last one sent."""

    async def frames() -> Frames:
        async with contextlib.aclosing(stream.items) as items:
            async for item in items:
                yield None if item is None else item.encode()

    def reconnect(last_id: str | None) -> bytes:
        resume_url = request.app.url_path_for("resume", chat_id=str(stream.chat_id), message_id=str(stream.message_id))
        data = {
            "message_id": str(stream.message_id),
            "resume_url": str(resume_url),
            "last_event_id": last_id,  # send as Last-Event-ID (or ?last_event_id=) to continue after it
            "retry_ms": RETRY_MS,
        }
        frame = b"event: reconnect\ndata: " + orjson.dumps(data) + b"\n\n"
        return (b"id: " + last_id.encode() + b"\n" + frame) if last_id else frame

    return EventStreamResponse(frames(), drain=stream_drain(request), farewell=reconnect)


# -- schemas ------------------------------------------------------------------------------------------
class ChatCreate(RequestModel):
    title: Title | None = None


class ChatRename(RequestModel):
    title: Title


class ChatOut(BaseModel):
    id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime


class ChatList(BaseModel):
    items: list[ChatOut]
    total: int
    limit: int
    offset: int


class MessageIn(RequestModel):
    content: str = Field(min_length=1, max_length=4000, pattern=NOT_BLANK_PATTERN)


class UnverifiedFigure(BaseModel):
    """A figure of an answer the grounding check could not verify (offsets in `content`)."""

    start: int = Field(description="Offset in the message content, in Unicode code points, where the figure starts")
    end: int = Field(description="Character offset where it ends (exclusive)")
    text: str
    reason: str | None = Field(
        description="wrong_subject | wrong_field | wrong_direction | comparison_false | comparison_loose | "
        "class_mismatch | time_mismatch | value_mismatch | no_matching_fact"
    )
    subject: str | None = None
    field: str | None = None


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    seq: int
    role: str
    content: str
    status: str = Field(description="`complete`, `incomplete`, `stopped` or `error`")
    reply_to_id: uuid.UUID | None
    metadata: dict[str, Any] = Field(validation_alias="meta")
    unverified: list[UnverifiedFigure] = Field(default_factory=list)
    created_at: datetime
    superseded_at: datetime | None = Field(
        default=None, description="Set on earlier versions of a turn (replaced by regenerate or edit)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usage(self) -> dict[str, Any] | None:
        """The tokens this answer used (every model round; cache reads and writes apart)."""
        value = self.metadata.get("usage")
        return value if isinstance(value, dict) else None


class MessageVersions(BaseModel):
    items: list[MessageOut] = Field(description="Every version of the turn: questions and answers, oldest first")


class SearchHit(BaseModel):
    chat_id: uuid.UUID
    title: str
    message_id: uuid.UUID | None = Field(description="null when the chat's title matched")
    role: str | None
    snippet: str = Field(description="The matching text with the matched words in <b>...</b>")


class SearchResults(BaseModel):
    items: list[SearchHit]


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_before: int | None = Field(description="Pass as `before` to load the older page; null when none is left")


# -- routes -----------------------------------------------------------------------------------------------
@router.get("/search", response_model=SearchResults)
async def search_chats(
    user: CurrentUser,
    chat: ChatDep,
    q: Annotated[
        str, Query(min_length=1, max_length=200, description='Words to find (web-search syntax: "phrase", -word, or)')
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> SearchResults:
    """Full-text search in the user's chat titles and messages (PostgreSQL, GIN-indexed), best first."""
    hits = await chat.library.search(user.id, q, limit=limit)
    return SearchResults(items=[SearchHit.model_validate(h) for h in hits])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChatOut)
async def create_chat(body: ChatCreate, user: CurrentUser, chat: ChatDep) -> Any:
    return await chat.library.create_chat(user.id, body.title)


@router.get("", response_model=ChatList)
async def list_chats(
    user: CurrentUser,
    chat: ChatDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Any:
    """Newest first; cached for SAGE_CACHE_TTL_USER_CHAT_LIST seconds, refreshed by every write."""
    return await chat.library.list_chats(user.id, limit=limit, offset=offset)


@router.get("/{chat_id:uuid}", response_model=ChatOut)
async def get_chat(chat_id: uuid.UUID, user: CurrentUser, chat: ChatDep) -> Any:
    return await chat.library.get_chat(user.id, chat_id)


@router.patch("/{chat_id:uuid}", response_model=ChatOut)
async def rename_chat(chat_id: uuid.UUID, body: ChatRename, user: CurrentUser, chat: ChatDep) -> Any:
    return await chat.library.rename_chat(user.id, chat_id, body.title)


@router.delete("/{chat_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_chat(chat_id: uuid.UUID, user: CurrentUser, chat: ChatDep) -> Response:
    await chat.delete_chat(user.id, chat_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{chat_id:uuid}/messages", response_model=MessagePage)
async def list_messages(
    chat_id: uuid.UUID,
    user: CurrentUser,
    chat: ChatDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX, description="`next_before` of the previous page")] = None,
) -> MessagePage:
    rows, next_before = await chat.library.messages(user.id, chat_id, limit=limit, before=before)
    return MessagePage(items=[MessageOut.model_validate(r) for r in rows], next_before=next_before)


@router.post(
    "/{chat_id:uuid}/messages", response_class=EventStreamResponse, responses={**_SSE_DOC, **error_responses(429)}
)
async def ask(
    request: Request, chat_id: uuid.UUID, body: MessageIn, user: CurrentUser, chat: ChatDep
) -> EventStreamResponse:
    """Ask a question; the answer streams back as Server-Sent Events.

    Refusals come before the stream as JSON: 404 (not your chat), 429 (request rate or
    daily token budget, with Retry-After), 503 (model queue full, with Retry-After).
    """
    stream = await chat.ask(user.id, chat_id, body.content)
    return answer_response(request, stream)


@router.get("/{chat_id:uuid}/messages/{message_id:uuid}/stream", response_class=EventStreamResponse, responses=_SSE_DOC)
async def resume(
    request: Request,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
    user: CurrentUser,
    chat: ChatDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
    last_event_id_query: Annotated[str | None, Query(alias="last_event_id", max_length=64)] = None,
) -> EventStreamResponse:
    """Reconnect to an answer: continues after `Last-Event-ID` (header, or `last_event_id`
    query for clients that cannot set headers); a finished answer is served from storage."""
    point = parse_last_event_id(last_event_id or last_event_id_query)
    stream = await chat.resume(user.id, chat_id, message_id, point)
    return answer_response(request, stream)


class StopOut(BaseModel):
    message_id: uuid.UUID
    status: str = Field(description="`stopping`: the answer's task was told; it saves the partial answer as `stopped`")


@router.post(
    "/{chat_id:uuid}/messages/{message_id:uuid}/stop", status_code=status.HTTP_202_ACCEPTED, response_model=StopOut
)
async def stop(chat_id: uuid.UUID, message_id: uuid.UUID, user: CurrentUser, chat: ChatDep) -> Any:
    """Stop an answer in progress, on whichever API task generates it. 404 when there is no
    such answer in progress; 409 when it has already finished."""
    return await chat.stop(user.id, chat_id, message_id)


class UsageOut(BaseModel):
    day: str = Field(description="The UTC day counted")
    tokens_used: int = Field(
        description="Every token processed today (input, output, cache reads), as the budget counts"
    )
    daily_budget: int
    remaining: int
    input_tokens: int = Field(description="Uncached input plus cache writes")
    output_tokens: int
    cache_read_tokens: int
    requests: int
    resets_at: str


@usage_router.get("/usage", response_model=UsageOut)
async def usage(user: CurrentUser, chat: ChatDep) -> Any:
    """Today's chat tokens against SAGE_CHAT_DAILY_TOKEN_BUDGET."""
    return await chat.library.usage(user.id)


@router.post(
    "/{chat_id:uuid}/messages/{message_id:uuid}/regenerate", response_class=EventStreamResponse, responses=_SSE_DOC
)
async def regenerate(
    request: Request, chat_id: uuid.UUID, message_id: uuid.UUID, user: CurrentUser, chat: ChatDep
) -> EventStreamResponse:
    """A new answer to the chat's last question (`message_id`: its latest answer), bypassing
    the answer cache; the earlier answer stays as a version. 409 for any other message."""
    stream = await chat.regenerate(user.id, chat_id, message_id)
    return answer_response(request, stream)


@router.post("/{chat_id:uuid}/messages/{message_id:uuid}/edit", response_class=EventStreamResponse, responses=_SSE_DOC)
async def edit(
    request: Request, chat_id: uuid.UUID, message_id: uuid.UUID, body: MessageIn, user: CurrentUser, chat: ChatDep
) -> EventStreamResponse:
    """Replace the chat's last question (`message_id`) and answer it; the previous exchange
    stays as a version of the turn. 409 for any other message or while an answer is running."""
    stream = await chat.edit(user.id, chat_id, message_id, body.content)
    return answer_response(request, stream)


@router.get("/{chat_id:uuid}/messages/{message_id:uuid}/versions", response_model=MessageVersions)
async def versions(chat_id: uuid.UUID, message_id: uuid.UUID, user: CurrentUser, chat: ChatDep) -> MessageVersions:
    """Every version of the turn `message_id` belongs to (edited questions, regenerated answers)."""
    rows = await chat.library.versions(user.id, chat_id, message_id)
    return MessageVersions(items=[MessageOut.model_validate(r) for r in rows])
