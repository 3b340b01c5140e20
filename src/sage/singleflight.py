"""One computation shared by concurrent callers of the same key, in this process.

Used wherever many requests can ask for the same expensive thing at once: a cache miss
(`sage.store.cache.Cache.get_or_compute`), a REST snapshot of a symbol nobody streams yet
(`sage.market.snapshot`), a portfolio's ledger state and performance (`sage.portfolio`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Concurrent calls for the same key share one computation (in this process).

    The computation runs as its own task: a caller that goes away (a client disconnecting)
    does not cancel it for the others. Nothing is kept once it ends; the key must name
    everything the result depends on (e.g. the portfolio, its ledger_version and the range),
    so a caller never joins a computation of another version than the one it read."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[T]] = {}
        self.joined = 0  # calls that shared another's computation

    async def run(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is not None:
            self.joined += 1
        else:

            async def computed() -> T:
                try:
                    return await compute()
                finally:
                    self._running.pop(key, None)

            task = asyncio.ensure_future(computed())
            # retrieved here, so a failure nobody waits for any more is not logged as unretrieved
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._running[key] = task
        return await asyncio.shield(task)
