"""Live notifications to open streams, across API tasks, through Valkey pub/sub.

One subscription per process (`sage.store.pubsub.ChannelListener`, as the market stream hub):
the task that fired an alert publishes the notification once; every process copies it to the streams its users have open.
A publish can be missed (Valkey blip, a crash right after commit, the moment between two
subscriptions); streams then catch up from the inbox, whose ids only grow, so nothing is lost
and nothing is shown twice. Every re-subscription tells the open streams to catch up at once
(`RESYNC`), so a publish missed in between is shown then, not a keep-alive interval later.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson

from sage.notifications.outbox import Recorded
from sage.store.cache import Cache, CacheUnavailable
from sage.store.pubsub import ChannelListener

log = logging.getLogger(__name__)

PUBLISH_CHUNK = 500  # notifications per Valkey message
CLIENT_QUEUE = 1000  # a stream this far behind stops queueing and catches up from the inbox
RESYNC: dict[str, Any] = {}  # queued (by identity) when the hub re-subscribed: re-read the inbox now


def wire(item: Recorded) -> dict[str, Any]:
    return {
        "id": item.id,
        "user_id": str(item.user_id),
        "kind": item.kind,
        "title": item.title,
        "body": item.body,
        "data": item.data,
        "created_at": item.created_at.isoformat(),
    }


class LiveClient:
    def __init__(self, user_id: uuid.UUID) -> None:
        self.user_id = user_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(CLIENT_QUEUE)
        self.overflowed = False  # missed some: the stream re-reads the inbox

    def offer(self, item: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    def resync(self) -> None:
        """Publishes may have been missed: the stream re-reads the inbox."""
        self.overflowed = True
        with suppress(asyncio.QueueFull):  # full: the stream catches up when it reads on
            self.queue.put_nowait(RESYNC)

    async def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class NotificationHub:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.channel = cache.key("notifications", "live")
        self.clients: dict[uuid.UUID, set[LiveClient]] = {}
        self.listener = ChannelListener(
            cache, self.channel, self.dispatch, name="notifications-hub", on_resubscribed=self.resync_all
        )
        self.subscribed = self.listener.subscribed
        self.dispatched = 0  # notifications copied to open streams by this process

    async def publish(self, items: Sequence[Recorded]) -> None:
        """Best effort: a failed publish is caught up from the inbox by the streams."""
        for start in range(0, len(items), PUBLISH_CHUNK):
            payload = orjson.dumps({"n": [wire(i) for i in items[start : start + PUBLISH_CHUNK]]})
            try:
                await self.cache.backend.publish(self.channel, payload)
            except CacheUnavailable as exc:
                self.cache.report_failure("notifications publish", exc)
                return

    @asynccontextmanager
    async def subscribe(self, user_id: uuid.UUID) -> AsyncIterator[LiveClient]:
        client = LiveClient(user_id)
        self.clients.setdefault(user_id, set()).add(client)
        self.listener.start()
        try:
            yield client
        finally:
            mine = self.clients.get(user_id)
            if mine is not None:
                mine.discard(client)
                if not mine:
                    del self.clients[user_id]
            if not self.clients:
                await self.close()

    async def close(self) -> None:
        await self.listener.stop()

    def resync_all(self) -> None:
        for clients in list(self.clients.values()):
            for client in clients:
                client.resync()

    def dispatch(self, payload: bytes) -> None:
        try:
            items = orjson.loads(payload)["n"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("unreadable message on the notifications channel")
            return
        for item in items:
            try:
                user_id = uuid.UUID(item["user_id"])
            except (KeyError, TypeError, ValueError):
                continue
            for client in self.clients.get(user_id, ()):
                client.offer(item)
                self.dispatched += 1
