"""Commands to answers running on any API task: stop one answer, or every answer of a deleted chat.

An answer runs on the task that was asked; a stop may arrive on another one. Every task
listens on one Valkey pub/sub channel (`chat:control`, one subscription per process, not
per answer); a command names a message or a chat, and the task running it cancels it.
The task that receives the request also acts locally at once, so the embedded default
(one process, in-process cache) needs no round trip.

A Valkey subscription that stays idle longer than the client's socket timeout is dropped
by the client (valkey-py reads with the pool's timeout), and a command published while
the listener resubscribes would be lost. So each command is also written as a key with a
TTL, and after every (re)subscription the listener sweeps the keys of the answers running
here: a stop lands within the resubscribe cycle (about the Valkey timeout) even then.
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


COMMAND_TTL_SECONDS = 600  # longer than any answer's deadline


class ControlChannel:
    def __init__(
        self,
        cache: Cache,
        on_command: Callable[[dict[str, Any]], None],
        running: Callable[[], list[tuple[str, str]]],
    ) -> None:
        """`running()` names the answers on this task as (message id, chat id) pairs."""
        self.cache = cache
        self.on_command = on_command
        self.running = running
        self.name = cache.key("chat", "control")
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _key(self, command: dict[str, Any]) -> str | None:
        if "stop" in command:
            return self.cache.key("chat", "control", "stop", command["stop"])
        if "chat_id" in command:
            return self.cache.key("chat", "control", "chat", command["chat_id"])
        return None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="chat-control")

    async def send(self, command: dict[str, Any]) -> None:
        payload = orjson.dumps(command)
        key = self._key(command)
        try:
            if key is not None:
                await self.cache.backend.set(key, payload, COMMAND_TTL_SECONDS)
            await self.cache.backend.publish(self.name, payload)
        except CacheUnavailable as exc:
            self.cache.report_failure("chat_control_publish", exc)

    async def sweep(self) -> None:
        """Apply commands written while no subscription was listening."""
        running = self.running()
        if not running:
            return
        commands = [{"stop": m} for m, _ in running] + [{"chat_id": c} for c in sorted({c for _, c in running})]
        keys = [self._key(c) or "" for c in commands]
        values = await self.cache.backend.get_many(keys)
        for command, value in zip(commands, values, strict=True):
            if value is not None:
                self.on_command(command)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            subscribed_at = None
            try:
                async with self.cache.backend.subscribe(self.name) as subscription:
                    subscribed_at = loop.time()
                    self.listening.set()
                    await self.sweep()
                    async for _, payload in subscription:
                        try:
                            command = orjson.loads(payload)
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(command, dict):
                            self.on_command(command)
            except CacheUnavailable as exc:
                if subscribed_at is not None and loop.time() - subscribed_at >= RESUBSCRIBE_SECONDS / 2:
                    continue  # an idle subscription timed out: resubscribe (and sweep) at once
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
