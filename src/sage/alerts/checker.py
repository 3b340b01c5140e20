"""The loop that evaluates active alerts against fresh market readings.

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
from contextlib import AsyncExitStack

from sage.alerts.service import PriceAlertService
from sage.notifications.live import NotificationHub

log = logging.getLogger(__name__)


async def check_once(service: PriceAlertService, hub: NotificationHub) -> int:
    """One pass: fire what crossed, push the notifications live; the number fired."""
    result = await service.evaluate()
    if result.notifications:
        log.info("market alerts fired", extra={"count": len(result.fired)})
        await hub.publish(result.notifications)
    return len(result.fired)


async def _check_forever(service: PriceAlertService, hub: NotificationHub, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await check_once(service, hub)
        except Exception:  # one bad tick (database blip) must not end the loop
            log.warning("market alert evaluation failed", exc_info=True)


def start_price_alert_checks(
    service: PriceAlertService, hub: NotificationHub, *, interval: float, stack: AsyncExitStack
) -> None:
    task = asyncio.create_task(_check_forever(service, hub, interval), name="market-alerts")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
