"""The in-app inbox, channel preferences and the live stream of one user's notifications."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from sage.chat.sse import StreamEvent
from sage.errors import NotFound, SageError
from sage.notifications.live import RESYNC, LiveClient, NotificationHub
from sage.notifications.outbox import EMAIL, WEB_PUSH
from sage.store.db import Database
from sage.store.notification_tables import Delivery, Notification, NotificationSettings
from sage.store.user_tables import User

EVENT = "notification"
CATCH_UP_BATCH = 200
SUBSCRIBE_WAIT_SECONDS = 2.0


class ChannelUnavailable(SageError):
    status = 422
    code = "validation_error"


@dataclass(frozen=True)
class DeliveryState:
    channel: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


@dataclass(frozen=True)
class InboxItem:
    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None
    deliveries: list[DeliveryState]


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxItem]
    total: int
    unread: int


@dataclass(frozen=True)
class ChannelSettings:
    in_app: bool
    email: bool
    web_push: bool
    email_verified: bool
    available: tuple[str, ...]


def event_of(row: dict[str, Any]) -> StreamEvent:
    """A notification as an SSE event whose id is the notification id (`<id>-0` in Sage's framing)."""
    return StreamEvent(seq=int(row["id"]), event=EVENT, data=row, chars=0)


class NotificationService:
    def __init__(self, db: Database, hub: NotificationHub, *, keepalive: float, available: frozenset[str]) -> None:
        self.db = db
        self.hub = hub
        self.keepalive = keepalive
        self.available = available  # external channels this server can send (configured)

    # -- inbox ----------------------------------------------------------------------------------
    async def page(self, user_id: uuid.UUID, *, limit: int, offset: int) -> InboxPage:
        """Unread first, newest first within each group."""
        async with self.db.session() as session:
            rows = list(
                await session.scalars(
                    select(Notification)
                    .where(Notification.user_id == user_id)
                    .order_by(Notification.read_at.is_(None).desc(), Notification.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
            total = await session.scalar(select(func.count()).where(Notification.user_id == user_id))
            unread = await session.scalar(
                select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
            )
            states: dict[int, list[DeliveryState]] = {}
            if rows:
                for d in await session.scalars(
                    select(Delivery).where(Delivery.notification_id.in_([r.id for r in rows])).order_by(Delivery.id)
                ):
                    states.setdefault(d.notification_id, []).append(
                        DeliveryState(d.channel, d.status, d.attempts, d.last_error, d.sent_at)
                    )
        items = [
            InboxItem(r.id, r.kind, r.title, r.body, r.data, r.created_at, r.read_at, states.get(r.id, []))
            for r in rows
        ]
        return InboxPage(items, total or 0, unread or 0)

    async def mark_read(self, user_id: uuid.UUID, notification_id: int) -> None:
        async with self.db.session() as session:
            found = await session.scalar(
                update(Notification)
                .where(Notification.id == notification_id, Notification.user_id == user_id)
                .values(read_at=func.coalesce(Notification.read_at, func.now()))
                .returning(Notification.id)
            )
            await session.commit()
        if found is None:
            raise NotFound(f"No notification {notification_id}")

    async def mark_all_read(self, user_id: uuid.UUID) -> int:
        async with self.db.session() as session:
            result = await session.execute(
                update(Notification)
                .where(Notification.user_id == user_id, Notification.read_at.is_(None))
                .values(read_at=func.now())
            )
            await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- preferences ----------------------------------------------------------------------------
    async def channel_settings(self, user_id: uuid.UUID) -> ChannelSettings:
        async with self.db.session() as session:
            row = await session.get(NotificationSettings, user_id)
            email = await session.scalar(select(User.email).where(User.id == user_id))
        verified = row is not None and row.verified_email is not None and row.verified_email == email
        return ChannelSettings(
            in_app=True,
            email=bool(row and row.email),
            web_push=bool(row and row.web_push),
            email_verified=verified,
            available=tuple(sorted(self.available)),
        )

    async def update_channels(self, user_id: uuid.UUID, *, email: bool, web_push: bool) -> ChannelSettings:
        wanted = {EMAIL: email, WEB_PUSH: web_push}
        missing = [name for name, on in wanted.items() if on and name not in self.available]
        if missing:
            raise ChannelUnavailable(
                f"Not available on this server: {', '.join(missing)}",
                details=[
                    {"field": name, "in": "body", "message": "this server is not configured to send it"}
                    for name in missing
                ],
            )
        async with self.db.session() as session:
            await session.execute(
                insert(NotificationSettings)
                .values(user_id=user_id, email=email, web_push=web_push)
                .on_conflict_do_update(
                    index_elements=[NotificationSettings.user_id],
                    set_={"email": email, "web_push": web_push, "updated_at": func.now()},
                )
            )
            await session.commit()
        return await self.channel_settings(user_id)

    async def mark_email_verified(self, user_id: uuid.UUID, email: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                insert(NotificationSettings)
                .values(user_id=user_id, verified_email=email, email_verified_at=datetime.now(UTC))
                .on_conflict_do_update(
                    index_elements=[NotificationSettings.user_id],
                    set_={"verified_email": email, "email_verified_at": func.now(), "updated_at": func.now()},
                )
            )
            await session.commit()

    # -- live stream ----------------------------------------------------------------------------
    async def _after(self, user_id: uuid.UUID, last_id: int) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Notification)
                .where(Notification.user_id == user_id, Notification.id > last_id)
                .order_by(Notification.id)
                .limit(CATCH_UP_BATCH)
            )
            return [
                {
                    "id": r.id,
                    "user_id": str(r.user_id),
                    "kind": r.kind,
                    "title": r.title,
                    "body": r.body,
                    "data": r.data,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]

    async def latest_id(self, user_id: uuid.UUID) -> int:
        async with self.db.session() as session:
            value = await session.scalar(select(func.max(Notification.id)).where(Notification.user_id == user_id))
        return int(value or 0)

    async def stream(self, user_id: uuid.UUID, last_id: int | None) -> AsyncGenerator[StreamEvent | None, None]:
        """Notifications after `last_id` (None: only new ones), then live ones as they come.

        Subscribes before reading the inbox, so nothing committed in between is missed; ids
        only grow, so an item seen both ways is sent once. Each quiet keep-alive interval
        also re-reads the inbox (a missed publish shows up within one interval)."""
        async with self.hub.subscribe(user_id) as client:
            with_timeout = asyncio.wait_for(self.hub.subscribed.wait(), SUBSCRIBE_WAIT_SECONDS)
            try:
                await with_timeout
            except TimeoutError:
                pass  # Valkey is away: the inbox catch-up below still delivers, a little later
            cursor = last_id if last_id is not None else await self.latest_id(user_id)
            async for event in self._drain(user_id, cursor):
                cursor = event.seq
                yield event
            while True:
                item = await client.next(self.keepalive)
                if item is None or item is RESYNC or client.overflowed:
                    client.overflowed = False
                    caught_up = False
                    async for event in self._drain(user_id, cursor):
                        cursor, caught_up = event.seq, True
                        yield event
                    if not caught_up and item is None:
                        yield None  # keep-alive
                    if item is None or item is RESYNC:
                        continue
                if int(item["id"]) > cursor:
                    cursor = int(item["id"])
                    yield event_of(item)

    async def _drain(self, user_id: uuid.UUID, cursor: int) -> AsyncGenerator[StreamEvent, None]:
        while True:
            rows = await self._after(user_id, cursor)
            for row in rows:
                cursor = int(row["id"])
                yield event_of(row)
            if len(rows) < CATCH_UP_BATCH:
                return


__all__ = ["LiveClient", "NotificationService"]
