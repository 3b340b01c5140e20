"""The loop that checks pending price alerts against fresh consolidated prices.

Every API task runs it; the conditional UPDATE in PriceAlertService.evaluate makes each
alert fire once however many tasks race. Fired alerts go to the Discord business channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

from sage.alerts.service import Fired, PriceAlertService, PriceReader
from sage.notify import Alert, Channel, Notifier

log = logging.getLogger(__name__)


def _announce(notifier: Notifier, fired: list[Fired]) -> None:
    for item in fired:
        notifier.send(
            Channel.BUSINESS,
            Alert(
                title="Market alert sent",
                message=f"{item.symbol} is {item.condition} {item.threshold} (now {item.price})",
                fields={
                    "Symbol": item.symbol,
                    "Condition": f"{item.condition} {item.threshold}",
                    "Price": str(item.price),
                },
                dedupe_key=f"market-alert:{item.symbol}:{item.condition}",
            ),
        )


async def _check_forever(service: PriceAlertService, prices: PriceReader, notifier: Notifier, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            fired = await service.evaluate(prices)
        except Exception:  # one bad tick (database blip) must not end the loop
            log.warning("market alert evaluation failed", exc_info=True)
            continue
        if fired:
            log.info("market alerts fired", extra={"count": len(fired)})
            _announce(notifier, fired)


def start_price_alert_checks(
    service: PriceAlertService, prices: PriceReader, notifier: Notifier, *, interval: float, stack: AsyncExitStack
) -> None:
    task = asyncio.create_task(_check_forever(service, prices, notifier, interval), name="market-alerts")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
