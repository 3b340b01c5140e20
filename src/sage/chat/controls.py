"""Commands to answers running on any API task: stop one answer, or every answer of a deleted chat.

An answer runs on the task that was asked; a stop may arrive on another one. Every task
listens on one Valkey pub/sub channel (`chat:control`, one subscription per process, not
per answer); a command names a message or a chat, and the task running it cancels it.
The task that receives the request also acts locally at once, so the embedded default
(one process, in-process cache) needs no round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson

from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

RESUBSCRIBE_SECONDS = 1.0


class ControlChannel:
    def __init__(self, cache: Cache, on_command: Callable[[dict[str, Any]], None]) -> None:
        self.cache = cache
        self.on_command = on_command
        self.name = cache.key("chat", "control")
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="chat-control")

    async def send(self, command: dict[str, Any]) -> None:
        try:
            await self.cache.backend.publish(self.name, orjson.dumps(command))
        except CacheUnavailable as exc:
            self.cache.report_failure("chat_control_publish", exc)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.cache.backend.subscribe(self.name) as subscription:
                    self.listening.set()
                    async for _, payload in subscription:
                        try:
                            command = orjson.loads(payload)
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(command, dict):
                            self.on_command(command)
            except CacheUnavailable as exc:
                self.cache.report_failure("chat_control_subscribe", exc)
            except Exception:
                log.exception("chat control listener failed; resubscribing")
            self.listening.clear()
            await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
