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
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from sage.api.deps import CurrentUser, RuntimeDep
from sage.api.sse import RETRY_MS, EventStreamResponse, Frames, stream_drain
from sage.chat.service import AnswerStream, ChatService
from sage.chat.sse import parse_last_event_id
from sage.errors import Unavailable
from sage.runtime import Runtime

router = APIRouter(prefix="/chats", tags=["chats"])

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`text/event-stream`: events `message`, `delta`, `done`, `error`, each with an id; "
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
class ChatCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title | None = None


class ChatRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
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


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(min_length=1, max_length=4000)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    seq: int
    role: str
    content: str
    status: str
    reply_to_id: uuid.UUID | None
    metadata: dict[str, Any] = Field(validation_alias="meta")
    created_at: datetime


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_before: int | None = Field(description="Pass as `before` to load the older page; null when none is left")


def chat_service(runtime: Runtime) -> ChatService:
    service = runtime.services.get("chat")
    if not isinstance(service, ChatService):
        raise Unavailable("Chat is not available", retry_after=5)
    return service


# -- routes -----------------------------------------------------------------------------------------------
@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChatOut)
async def create_chat(body: ChatCreate, user: CurrentUser, runtime: RuntimeDep) -> Any:
    return await chat_service(runtime).create_chat(user.id, body.title)


@router.get("", response_model=ChatList)
async def list_chats(
    user: CurrentUser,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Any:
    """Newest first; cached for SAGE_CACHE_TTL_USER_CHAT_LIST seconds, refreshed by every write."""
    return await chat_service(runtime).list_chats(user.id, limit=limit, offset=offset)


@router.get("/{chat_id}", response_model=ChatOut)
async def get_chat(chat_id: uuid.UUID, user: CurrentUser, runtime: RuntimeDep) -> Any:
    return await chat_service(runtime).get_chat(user.id, chat_id)


@router.patch("/{chat_id}", response_model=ChatOut)
async def rename_chat(chat_id: uuid.UUID, body: ChatRename, user: CurrentUser, runtime: RuntimeDep) -> Any:
    return await chat_service(runtime).rename_chat(user.id, chat_id, body.title)


@router.delete("/{chat_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_chat(chat_id: uuid.UUID, user: CurrentUser, runtime: RuntimeDep) -> Response:
    await chat_service(runtime).delete_chat(user.id, chat_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{chat_id}/messages", response_model=MessagePage)
async def list_messages(
    chat_id: uuid.UUID,
    user: CurrentUser,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, description="`next_before` of the previous page")] = None,
) -> MessagePage:
    rows, next_before = await chat_service(runtime).messages(user.id, chat_id, limit=limit, before=before)
    return MessagePage(items=[MessageOut.model_validate(r) for r in rows], next_before=next_before)


@router.post("/{chat_id}/messages", response_class=EventStreamResponse, responses=_SSE_DOC)
async def ask(
    request: Request, chat_id: uuid.UUID, body: MessageIn, user: CurrentUser, runtime: RuntimeDep
) -> EventStreamResponse:
    """Ask a question; the answer streams back as Server-Sent Events.

    Refusals come before the stream as JSON: 404 (not your chat), 429 (request rate or
    daily token budget, with Retry-After), 503 (model queue full, with Retry-After).
    """
    stream = await chat_service(runtime).ask(user.id, chat_id, body.content)
    return answer_response(request, stream)


@router.get("/{chat_id}/messages/{message_id}/stream", response_class=EventStreamResponse, responses=_SSE_DOC)
async def resume(
    request: Request,
    chat_id: uuid.UUID,
    message_id: uuid.UUID,
    user: CurrentUser,
    runtime: RuntimeDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
    last_event_id_query: Annotated[str | None, Query(alias="last_event_id", max_length=64)] = None,
) -> EventStreamResponse:
    """Reconnect to an answer: continues after `Last-Event-ID` (header, or `last_event_id`
    query for clients that cannot set headers); a finished answer is served from storage."""
    point = parse_last_event_id(last_event_id or last_event_id_query)
    stream = await chat_service(runtime).resume(user.id, chat_id, message_id, point)
    return answer_response(request, stream)
