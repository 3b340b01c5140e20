"""The loop that evaluates active alerts against fresh market readings.

Driven by the ticks themselves: the checker subscribes to the market's tick channel (the
same Valkey pub/sub the ingestor publishes every flush to), and each published batch wakes
it. One pass then covers every symbol ticked since the previous pass, so a burst of batches
costs one pass, and passes start at most every `COALESCE_SECONDS`: under a busy feed the
checker evaluates a few times a second, not once per batch. A tick pass reads only the
ticked symbols that active alerts watch (one indexed query, one cache read, one UPDATE).

A slow full pass every `interval` seconds (SAGE_MARKET_ALERT_CHECK_SECONDS) is the safety
net: it evaluates every watched symbol (ticks missed while the subscription was down),
Fear & Greed (published daily, no ticks), change_pct windows that slide without a tick, and
portfolio alerts (each portfolio valued through the portfolio domain).

Every API task runs it; the conditional UPDATE in `sage.alerts.evaluation` makes each firing
happen once however many tasks race. The notification and its delivery rows are committed
with the firing; this loop then publishes them to open streams (a fast path: a stream that
misses the publish catches up from the inbox). The operator's business channel gets counts
in a digest (`sage.observability.business.MarketDigest`), not one message per user alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from contextlib import AsyncExitStack

import orjson

from sage.alerts.service import Evaluation, PriceAlertService
from sage.notifications.live import NotificationHub
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

# The shortest time between two pass starts. Ticks arriving meanwhile join the next pass, so
# a feed flushing many times a second costs at most ~1/COALESCE_SECONDS passes per second
# per task, while a lone tick is evaluated at once (a pass starts as soon as it arrives).
# Under a steady feed a tick waits half of it on average. A tick pass with nothing crossed is
# a few index probes and one statement (ix_market_alerts_crossing), so 20 a second are cheap.
COALESCE_SECONDS = 0.05


async def _publish(result: Evaluation, hub: NotificationHub) -> int:
    if result.notifications:
        log.info("market alerts fired", extra={"count": len(result.fired)})
        await hub.publish(result.notifications)
    return len(result.fired)


async def check_once(service: PriceAlertService, hub: NotificationHub) -> int:
    """One full pass: fire what crossed, push the notifications live; the number fired."""
    return await _publish(await service.evaluate(), hub)


async def check_ticked(service: PriceAlertService, hub: NotificationHub, symbols: Iterable[str]) -> int:
    """One pass over the alerts on `symbols` (those just ticked); the number fired."""
    return await _publish(await service.evaluate_symbols(symbols), hub)


def ticked_symbols(payload: bytes) -> set[str]:
    """The symbols of one published tick batch (`{"tickers": [{"symbol": ...}, ...]}`)."""
    try:
        tickers = orjson.loads(payload)["tickers"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return set()
    if type(tickers) is not list:
        return set()
    return {wire["symbol"] for wire in tickers if type(wire) is dict and type(wire.get("symbol")) is str}


class AlertChecker:
    """Wakes on tick batches (coalesced) and every `interval` seconds for a full pass."""

    def __init__(
        self,
        service: PriceAlertService,
        hub: NotificationHub,
        *,
        interval: float,
        coalesce: float = COALESCE_SECONDS,
    ) -> None:
        self.service = service
        self.hub = hub
        self.interval = interval
        self.coalesce = coalesce
        self.subscribed = asyncio.Event()  # set while the tick subscription is open
        self._touched: set[str] = set()
        self._wake = asyncio.Event()

    def ticked(self, symbols: Iterable[str]) -> None:
        """Symbols that just ticked: the next pass evaluates their alerts."""
        before = len(self._touched)
        self._touched.update(symbols)
        if len(self._touched) != before:
            self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_full = loop.time() + self.interval
        while True:
            wait = next_full - loop.time()
            if wait > 0 and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            started = loop.time()
            touched, self._touched = self._touched, set()
            full = started >= next_full
            try:
                if full:
                    next_full = loop.time() + self.interval
                    await check_once(self.service, self.hub)
                elif touched:
                    await check_ticked(self.service, self.hub, touched)
            except Exception:  # one bad pass (database blip) must not end the loop
                log.warning("market alert evaluation failed", exc_info=True)
            # passes start at most every `coalesce` seconds; a pass that took longer is followed
            # at once by the next (which covers every tick that arrived meanwhile)
            await asyncio.sleep(max(0.0, started + self.coalesce - loop.time()))

    async def watch_ticks(self, cache: Cache, channel: str) -> None:
        """Subscribe to the tick channel and wake the loop per batch; resubscribe on failure
        (the full pass covers what was missed meanwhile). A quiet channel hits the Valkey
        socket timeout; that is not an outage, so a subscription that lasted a while is
        renewed at once, a failing one after a growing delay."""
        loop = asyncio.get_running_loop()
        retry = 0.5
        while True:
            started = loop.time()
            try:
                async with cache.backend.subscribe(channel) as subscription:
                    self.subscribed.set()
                    async for _channel, payload in subscription:
                        self.ticked(ticked_symbols(payload))
            except CacheUnavailable as exc:
                if loop.time() - started < 0.5:
                    cache.report_failure("market alert ticks", exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("market alert tick subscription failed; resubscribing")
            self.subscribed.clear()
            if loop.time() - started >= 0.5:
                retry = 0.5
                continue
            await asyncio.sleep(retry * (0.5 + random.random() / 2))
            retry = min(10.0, retry * 2)


def start_price_alert_checks(
    service: PriceAlertService,
    hub: NotificationHub,
    *,
    interval: float,
    ticks: tuple[Cache, str] | None,
    stack: AsyncExitStack,
) -> AlertChecker:
    """The checker loop, woken by the tick batches published on `ticks` (cache, channel)."""
    checker = AlertChecker(service, hub, interval=interval)
    tasks = [asyncio.create_task(checker.run(), name="market-alerts")]
    if ticks is not None:
        tasks.append(asyncio.create_task(checker.watch_ticks(*ticks), name="market-alert-ticks"))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    stack.push_async_callback(stop)
    return checker
