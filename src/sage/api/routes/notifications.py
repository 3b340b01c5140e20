"""The in-app inbox, its live stream, channel preferences and email verification."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from sage.api.deps import CurrentUser, EmailVerifierDep, NotificationsDep
from sage.api.openapi import error_responses
from sage.api.routes.chats import _SSE_DOC
from sage.api.schemas import INT64_MAX, RequestModel
from sage.api.sse import EventStreamResponse, Frames, stream_drain
from sage.chat.sse import StreamItems
from sage.errors import Unavailable
from sage.notifications.delivery import PermanentFailure, TemporaryFailure

router = APIRouter(prefix="/notifications", tags=["notifications"])
settings_router = APIRouter(prefix="/users/me", tags=["notifications"])

_LAST_ID = re.compile(r"^(\d{1,18})(?:-\d{1,12})?$")


def notification_stream_response(request: Request, items: StreamItems) -> EventStreamResponse:
    """The notification events through the one SSE response (it ends at shutdown; the browser
    reconnects elsewhere with Last-Event-ID)."""

    async def frames() -> Frames:
        async with contextlib.aclosing(items) as events:
            async for item in events:
                yield None if item is None else item.encode()

    return EventStreamResponse(frames(), drain=stream_drain(request))


def parse_last_id(raw: str | None) -> int | None:
    """`Last-Event-ID` is the last notification id seen (`17`, or `17-0` as Sage frames it)."""
    if not raw:
        return None
    match = _LAST_ID.match(raw.strip())
    return int(match.group(1)) if match else None


class DeliveryOut(BaseModel):
    channel: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class NotificationOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None
    deliveries: list[DeliveryOut]


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    unread: int
    limit: int
    offset: int


class ReadAll(BaseModel):
    marked: int


@router.get("", response_model=NotificationPage)
async def list_notifications(
    user: CurrentUser,
    notifications: NotificationsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> NotificationPage:
    """Unread first, newest first; each with the state of its email / web push deliveries."""
    page = await notifications.page(user.id, limit=limit, offset=offset)
    return NotificationPage(
        items=[
            NotificationOut(
                id=i.id,
                kind=i.kind,
                title=i.title,
                body=i.body,
                data=i.data,
                created_at=i.created_at,
                read_at=i.read_at,
                deliveries=[DeliveryOut(**d.__dict__) for d in i.deliveries],
            )
            for i in page.items
        ],
        total=page.total,
        unread=page.unread,
        limit=limit,
        offset=offset,
    )


@router.get("/stream", response_class=EventStreamResponse, responses=_SSE_DOC)
async def stream_notifications(
    request: Request,
    user: CurrentUser,
    notifications: NotificationsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
    last_event_id_query: Annotated[str | None, Query(alias="last_event_id", max_length=64)] = None,
) -> EventStreamResponse:
    """Live `notification` events (id = the notification id). Reconnect with `Last-Event-ID`
    (header, or `last_event_id` query) to get every notification after it; without one, only
    new notifications are sent."""
    last_id = parse_last_id(last_event_id or last_event_id_query)
    return notification_stream_response(request, notifications.stream(user.id, last_id))


@router.post("/read-all", response_model=ReadAll)
async def read_all(user: CurrentUser, notifications: NotificationsDep) -> ReadAll:
    return ReadAll(marked=await notifications.mark_all_read(user.id))


@router.post("/{notification_id}/read", status_code=status.HTTP_204_NO_CONTENT)
async def read_one(
    notification_id: Annotated[int, Path(ge=1, le=INT64_MAX)], user: CurrentUser, notifications: NotificationsDep
) -> None:
    await notifications.mark_read(user.id, notification_id)


# -- preferences and email verification -----------------------------------------------------------
class ChannelsIn(RequestModel):
    email: bool = False
    web_push: bool = False


class ChannelsOut(BaseModel):
    in_app: bool
    email: bool
    web_push: bool
    email_verified: bool
    available: list[str]


@settings_router.get("/notification-settings", response_model=ChannelsOut)
async def get_channels(user: CurrentUser, notifications: NotificationsDep) -> ChannelsOut:
    """Which channels get alerts: in-app always; email (once the address is verified) and web push."""
    s = await notifications.channel_settings(user.id)
    return ChannelsOut(**{**s.__dict__, "available": list(s.available)})


@settings_router.put("/notification-settings", response_model=ChannelsOut)
async def put_channels(body: ChannelsIn, user: CurrentUser, notifications: NotificationsDep) -> ChannelsOut:
    s = await notifications.update_channels(user.id, email=body.email, web_push=body.web_push)
    return ChannelsOut(**{**s.__dict__, "available": list(s.available)})


@settings_router.post("/email/verify-request", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(400))
async def request_verification(user: CurrentUser, verifier: EmailVerifierDep) -> dict[str, str]:
    """Email a signed link (valid SAGE_EMAIL_VERIFY_TTL_SECONDS) to the account's address."""
    try:
        await verifier.send(user.id, user.email)
    except (TemporaryFailure, PermanentFailure):
        raise Unavailable("The email could not be sent; try again later", retry_after=60) from None
    return {"status": "sent", "email": user.email}


async def _verify(token: str, verifier: EmailVerifierDep, notifications: NotificationsDep) -> str:
    address = verifier.check(token)
    await notifications.mark_email_verified(address.user_id, address.email)
    return address.email


@settings_router.post("/email/verify", responses=error_responses(400))
async def verify_email(
    token: Annotated[str, Query(min_length=10, max_length=500)],
    verifier: EmailVerifierDep,
    notifications: NotificationsDep,
) -> dict[str, str]:
    """The link's token is the credential (no bearer token needed: it is opened from an email)."""
    return {"status": "verified", "email": await _verify(token, verifier, notifications)}


@settings_router.get("/email/verify", response_class=HTMLResponse, responses=error_responses(400))
async def verify_email_link(
    token: Annotated[str, Query(min_length=10, max_length=500)],
    verifier: EmailVerifierDep,
    notifications: NotificationsDep,
) -> HTMLResponse:
    await _verify(token, verifier, notifications)
    return HTMLResponse(
        "<!doctype html><p>Your email address is confirmed. Sage alerts can now reach you by email.</p>"
    )
