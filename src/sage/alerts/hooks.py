"""Runtime hook: the alert service, and a loop that evaluates pending alerts.

Every API task runs the loop; the conditional UPDATE in AlertService.evaluate makes each
alert fire once however many tasks race. Fired alerts go to the Discord business channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

from sage.alerts.service import AlertService, Fired
from sage.runtime import START_HOOKS, Runtime

log = logging.getLogger(__name__)


def _announce(runtime: Runtime, fired: list[Fired]) -> None:
    notifier = runtime.services.get("notifier")
    if notifier is None:
        return
    from sage.notify import Alert, Channel

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


async def _evaluate_forever(runtime: Runtime, service: AlertService) -> None:
    interval = runtime.settings.market_alert_check_seconds
    while True:
        await asyncio.sleep(interval)
        market = runtime.services.get("market")
        if market is None:
            continue
        try:
            fired = await service.evaluate(market)
        except Exception:  # one bad tick (database blip) must not end the loop
            log.warning("market alert evaluation failed", exc_info=True)
            continue
        if fired:
            log.info("market alerts fired", extra={"count": len(fired)})
            _announce(runtime, fired)


async def start_alerts(runtime: Runtime, stack: AsyncExitStack) -> None:
    service = AlertService(runtime.db, runtime.metrics)
    runtime.services["alerts"] = service
    task = asyncio.create_task(_evaluate_forever(runtime, service), name="market-alerts")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


START_HOOKS.append(start_alerts)
