"""Writing notifications inside the caller's transaction (the transactional outbox).

A domain that decides something the user must hear of (an alert fired) calls `record` in
the same transaction as the decision: the inbox row and one delivery row per channel the
user enabled commit together with it, or not at all. Nothing is sent here; the delivery
worker sends what the outbox holds, and the live stream reads the inbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

EMAIL = "email"
WEB_PUSH = "web_push"
IN_APP = "in_app"
EXTERNAL_CHANNELS = (EMAIL, WEB_PUSH)


@dataclass(frozen=True)
class NewNotification:
    user_id: uuid.UUID
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    alert_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Recorded:
    id: int
    user_id: uuid.UUID
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    channels: tuple[str, ...]  # external channels a delivery row was written for


# One statement for the whole batch, however many notifications: arrays in, rows out. The
# notifications, and their delivery rows: email only to the address the user verified (and
# still has), web push when enabled. Rows come back in id order (a stream's cursor only grows).
_INSERT = text(
    """
    WITH n AS (
        INSERT INTO notifications (user_id, kind, title, body, data, alert_id)
        SELECT u, k, t, b, CAST(d AS jsonb), a
        FROM unnest(CAST(:users AS uuid[]), CAST(:kinds AS text[]), CAST(:titles AS text[]),
                    CAST(:bodies AS text[]), CAST(:data AS text[]), CAST(:alerts AS uuid[])) AS x(u, k, t, b, d, a)
        RETURNING id, user_id, kind, title, body, data, created_at
    ),
    d AS (
        INSERT INTO notification_deliveries (notification_id, user_id, channel, status)
        SELECT n.id, n.user_id, ch.channel, 'pending'
        FROM n
        JOIN notification_settings s ON s.user_id = n.user_id
        JOIN users u ON u.id = n.user_id
        CROSS JOIN LATERAL (VALUES ('email', s.email AND s.verified_email = u.email),
                                   ('web_push', s.web_push)) AS ch(channel, enabled)
        WHERE ch.enabled
        RETURNING notification_id, channel
    )
    SELECT n.id, n.user_id, n.kind, n.title, n.body, n.data, n.created_at,
           coalesce(c.channels, CAST('{}' AS text[])) AS channels
    FROM n LEFT JOIN (SELECT notification_id, array_agg(channel ORDER BY channel) AS channels
                      FROM d GROUP BY notification_id) AS c ON c.notification_id = n.id
    ORDER BY n.id
    """
)


async def record(session: AsyncSession, items: list[NewNotification]) -> list[Recorded]:
    """Insert the notifications and their delivery rows; the caller commits."""
    if not items:
        return []
    result = await session.execute(
        _INSERT,
        {
            "users": [i.user_id for i in items],
            "kinds": [i.kind for i in items],
            "titles": [i.title for i in items],
            "bodies": [i.body for i in items],
            "data": [orjson.dumps(i.data).decode() for i in items],
            "alerts": [i.alert_id for i in items],
        },
    )
    return [
        Recorded(
            id=r.id,
            user_id=r.user_id,
            kind=r.kind,
            title=r.title,
            body=r.body,
            data=dict(r.data),
            created_at=r.created_at,
            channels=tuple(r.channels),
        )
        for r in result
    ]
