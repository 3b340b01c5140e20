"""One channel's subscriber loop, for the hubs that fan a Valkey channel out inside a process.

The market stream hub and the notification hub each hold one subscription per process,
opened when their first stream arrives and closed when the last one leaves. This is that
loop: subscribe, hand every message to a callback, and when Valkey goes away report it
(once per interval, through the cache) and subscribe again with a jittered backoff.
Messages published while no subscription is open are not seen: the hubs' readers catch up
by their own means (the market stream's next update replaces the price, the inbox is re-read).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import suppress

from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)


class ChannelListener:
    def __init__(
        self,
        cache: Cache,
        channel: str,
        on_message: Callable[[bytes], None],
        *,
        name: str,
        on_resubscribed: Callable[[], None] | None = None,
    ) -> None:
        self.cache = cache
        self.channel = channel
        self.on_message = on_message
        # Called each time a subscription opens after the first: what was published in
        # between was missed, so a listener that can catch up (from a store) does it now.
        self.on_resubscribed = on_resubscribed
        self.name = name
        self.subscribed = asyncio.Event()  # set while the Valkey subscription is open
        self.subscriptions = 0  # subscriptions opened so far (a resubscription counts again)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Subscribe in the background, unless already running."""
        if self.running:
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._listen(self._stopping), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopping.set()
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self.subscribed.clear()

    async def _listen(self, stopping: asyncio.Event) -> None:
        # `stopping`, besides the task's cancellation: a client library that turns a
        # cancellation into a connection error would otherwise keep this loop going
        retry = 0.5
        while not stopping.is_set():
            try:
                async with self.cache.backend.subscribe(self.channel) as subscription:
                    self.subscriptions += 1
                    self.subscribed.set()
                    retry = 0.5
                    if self.subscriptions > 1 and self.on_resubscribed is not None:
                        self.on_resubscribed()
                    async for _channel, payload in subscription:
                        try:
                            self.on_message(payload)
                        except Exception:
                            # one message the hub cannot handle costs that message, not the
                            # subscription (resubscribing would miss what follows meanwhile)
                            log.exception("a published message could not be handled", extra={"listener": self.name})
            except CacheUnavailable as exc:
                self.cache.report_failure(f"{self.name} subscribe", exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("subscriber loop failed; resubscribing", extra={"listener": self.name})
            self.subscribed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), retry * (0.5 + random.random() / 2))
            retry = min(10.0, retry * 2)
