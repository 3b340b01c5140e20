"""On-demand live prices: the ingestor follows the demand set (`sage.market.demand`).

Every `poll` seconds, and at once when an API task announces a newly demanded symbol, it
reads the SAGE_MAX_LIVE_SYMBOLS most recently demanded symbols, keeps those the catalog
lists on each exchange, and hands each exchange runner its new set: the runner sends
SUBSCRIBE / UNSUBSCRIBE on the running connection (paced under Binance's 5 messages/s)
without reconnecting anything. Past the bound, the least recently demanded symbols are
the ones left out (and unsubscribed); a symbol nobody asked about for
SAGE_DEMAND_TTL_SECONDS drops out the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress

from sage.market.catalog import SymbolCatalog
from sage.market.demand import DemandSet
from sage.market.history import stop_if_cancelled
from sage.market.live import ExchangeFeedRunner
from sage.store.cache import CacheUnavailable

log = logging.getLogger(__name__)


class LiveSubscriptions:
    def __init__(
        self,
        demand: DemandSet,
        catalog: SymbolCatalog,
        runners: Callable[[], Mapping[str, ExchangeFeedRunner]],
        *,
        configured: Sequence[str],
        max_live: int,
        poll: float = 1.0,
        on_new: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.demand = demand
        self.catalog = catalog
        self.runners = runners
        self.configured = frozenset(configured)
        self.max_live = max_live
        self.poll = poll
        self.on_new = on_new
        self.live: list[str] = []  # the on-demand symbols currently wanted, most recent first
        self.syncs = 0
        self._seen: set[str] = set()

    async def sync(self) -> list[str]:
        demanded = await self.demand.current(self.max_live + len(self.configured))
        wanted = [s for s in demanded if s not in self.configured and self.catalog.is_listed(s)][: self.max_live]
        for exchange, runner in list(self.runners().items()):
            listed = [s for s in wanted if exchange in self.catalog.exchanges_for(s)]
            added, removed = await runner.set_dynamic(listed)
            if added or removed:
                log.info(
                    "on-demand subscriptions changed",
                    extra={"exchange": exchange, "added": added[:20], "removed": removed[:20]},
                )
        new = [s for s in wanted if s not in self._seen]
        self._seen.update(new)
        if new and self.on_new is not None:
            self.on_new(new)
        self.live = wanted
        self.syncs += 1
        return wanted

    async def run(self) -> None:
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(wake))
        try:
            while True:
                try:
                    await self.sync()
                except CacheUnavailable as exc:
                    stop_if_cancelled()
                    self.demand.cache.report_failure("market demand", exc)
                stop_if_cancelled()
                with suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll)
                wake.clear()
        finally:
            listener.cancel()
            with suppress(asyncio.CancelledError):
                await listener

    async def _listen(self, wake: asyncio.Event) -> None:
        """Newly demanded symbols wake the loop at once (the poll is the fallback).
        A quiet channel hits the Valkey socket timeout; that is not an outage, so a
        subscription that lasted a while is renewed at once, a failing one after `poll`."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                async with self.demand.cache.backend.subscribe(self.demand.channel) as sub:
                    async for _channel, _message in sub:
                        wake.set()
            except CacheUnavailable:
                stop_if_cancelled()
            stop_if_cancelled()
            if loop.time() - started < 0.5:
                await asyncio.sleep(self.poll)
