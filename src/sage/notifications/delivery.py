"""The delivery worker: sends what the outbox holds, each delivery marked sent once.

Claiming: `SELECT ... FOR UPDATE SKIP LOCKED` picks due rows no other worker is claiming,
and the claim writes a lease (owner + expiry) and commits, so the row lock is held only for
the claim. A worker that dies after claiming (crash, kill, deploy) leaves rows whose lease
runs out; another worker then takes them. Marking a row sent checks the lease owner, so a
worker that outlived its lease cannot overwrite the new owner's result.

Sending is at-least-once at the wire in one narrow case: a worker killed after the provider
accepted a message but before the `sent` row committed (milliseconds). Every email carries a
Message-ID derived from the delivery id, so a resend is recognisable as the same message.

Failures: a `TemporaryFailure` retries with exponential backoff (or the provider's
Retry-After) up to SAGE_DELIVERY_MAX_ATTEMPTS; a `PermanentFailure`, or running out of
attempts, ends the delivery `failed` with the reason, which the user sees in the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import text

from sage.observability.metrics import Metrics
from sage.store.db import Database

log = logging.getLogger(__name__)

ERROR_MAX = 500


@dataclass(frozen=True)
class Claimed:
    id: int
    notification_id: int
    user_id: uuid.UUID
    channel: str
    attempts: int  # including this one
    email: str | None  # the verified address (None: not verified)
    title: str
    body: str
    data: dict[str, Any]


class TemporaryFailure(Exception):
    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    pass


class ChannelSender(Protocol):
    async def send(self, delivery: Claimed) -> None:
        """Deliver, or raise TemporaryFailure / PermanentFailure."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial: float = 5.0
    maximum: float = 900.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.maximum)
        return min(self.initial * 2.0 ** (attempts - 1), self.maximum)


_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM notification_deliveries
        WHERE status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
        ORDER BY next_attempt_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE notification_deliveries d
    SET lease_owner = :owner, lease_until = now() + :lease * interval '1 second', attempts = d.attempts + 1
    FROM due WHERE d.id = due.id
    RETURNING d.id
    """
)

_CLAIMED = text(
    """
    SELECT d.id, d.notification_id, d.user_id, d.channel, d.attempts, n.title, n.body, n.data,
           CASE WHEN s.verified_email = u.email THEN u.email END AS email
    FROM notification_deliveries d
    JOIN notifications n ON n.id = d.notification_id
    JOIN users u ON u.id = d.user_id
    LEFT JOIN notification_settings s ON s.user_id = d.user_id
    WHERE d.id = ANY(CAST(:ids AS bigint[]))
    ORDER BY d.id
    """
)

_SENT = text(
    """
    UPDATE notification_deliveries
    SET status = 'sent', sent_at = now(), lease_owner = NULL, lease_until = NULL, last_error = NULL
    WHERE id = :id AND lease_owner = :owner AND status = 'pending'
    """
)

_RETRY = text(
    """
    UPDATE notification_deliveries
    SET next_attempt_at = now() + :delay * interval '1 second', lease_owner = NULL, lease_until = NULL,
        last_error = :error
    WHERE id = :id AND lease_owner = :owner AND status = 'pending'
    """
)

_FAILED = text(
    """
    UPDATE notification_deliveries
    SET status = 'failed', lease_owner = NULL, lease_until = NULL, last_error = :error
    WHERE id = :id AND lease_owner = :owner AND status = 'pending'
    """
)


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        senders: Mapping[str, ChannelSender],
        metrics: Metrics,
        *,
        policy: RetryPolicy,
        batch_size: int = 100,
        concurrency: int = 10,
        lease_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.senders = senders
        self.metrics = metrics
        self.policy = policy
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.owner = uuid.uuid4()
        self._slots = asyncio.Semaphore(concurrency)

    async def claim(self) -> list[Claimed]:
        async with self.db.session() as session:
            ids = list(
                await session.scalars(
                    _CLAIM, {"limit": self.batch_size, "owner": self.owner, "lease": self.lease_seconds}
                )
            )
            await session.commit()
            if not ids:
                return []
            rows = await session.execute(_CLAIMED, {"ids": ids})
            return [
                Claimed(
                    id=r.id,
                    notification_id=r.notification_id,
                    user_id=r.user_id,
                    channel=r.channel,
                    attempts=r.attempts,
                    email=r.email,
                    title=r.title,
                    body=r.body,
                    data=dict(r.data),
                )
                for r in rows
            ]

    async def run_once(self) -> int:
        """Claim one batch and send it; the number of deliveries claimed."""
        batch = await self.claim()
        if batch:
            await asyncio.gather(*(self._deliver(item) for item in batch))
        return len(batch)

    async def drain(self) -> int:
        """Rounds until nothing is due (tests, benchmarks); the number claimed in all."""
        total = 0
        while claimed := await self.run_once():
            total += claimed
        return total

    async def _deliver(self, item: Claimed) -> None:
        async with self._slots:
            sender = self.senders.get(item.channel)
            try:
                if sender is None:
                    raise PermanentFailure(f"{item.channel} is not configured on this server")
                await sender.send(item)
            except TemporaryFailure as exc:
                if item.attempts >= self.policy.max_attempts:
                    await self._finish(_FAILED, item, error=f"gave up after {item.attempts} attempts: {exc}")
                    self.metrics.incr("NotificationsFailed", channel=item.channel)
                else:
                    delay = self.policy.delay(item.attempts, exc.retry_after)
                    await self._finish(_RETRY, item, error=str(exc), delay=delay)
                    self.metrics.incr("NotificationRetries", channel=item.channel)
                return
            except PermanentFailure as exc:
                await self._finish(_FAILED, item, error=str(exc))
                self.metrics.incr("NotificationsFailed", channel=item.channel)
                return
            await self._finish(_SENT, item)
            self.metrics.incr("NotificationsDelivered", channel=item.channel)

    async def _finish(self, statement: Any, item: Claimed, **values: Any) -> None:
        params: dict[str, Any] = {"id": item.id, "owner": self.owner}
        if "error" in values:
            values["error"] = str(values["error"])[:ERROR_MAX]
        async with self.db.session() as session:
            await session.execute(statement, params | values)
            await session.commit()


async def _work_forever(worker: DeliveryWorker, poll: float) -> None:
    while True:
        try:
            claimed = await worker.run_once()
        except Exception:  # a database blip must not end delivery
            log.warning("delivery round failed", exc_info=True)
            claimed = 0
        if claimed < worker.batch_size:
            await asyncio.sleep(poll)


def start_delivery_worker(worker: DeliveryWorker, *, poll: float, stack: AsyncExitStack) -> asyncio.Task[None]:
    task = asyncio.create_task(_work_forever(worker, poll), name="notification-delivery")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    return task
