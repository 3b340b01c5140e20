"""Runtime hook: `runtime.services["market"]` is the MarketService; in the embedded
default (SAGE_INGEST_IN_PROCESS, on when VALKEY_URL is unset) this process also runs
the ingestor, behind the same per-feed leases `sage ingest` uses."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from sage.market.ingest import Ingestor
from sage.market.service import MarketService
from sage.runtime import START_HOOKS
from sage.settings import MarketSource

if TYPE_CHECKING:
    from sage.runtime import Runtime

log = logging.getLogger(__name__)


async def start_market(runtime: Runtime, stack: AsyncExitStack) -> None:
    settings = runtime.settings
    service = MarketService(settings, runtime.cache, runtime.db, runtime.metrics)
    runtime.services["market"] = service
    stack.push_async_callback(service.close)
    if settings.ingest_in_process and settings.market_source is not MarketSource.OFF:
        ingestor = Ingestor(settings, runtime.cache, runtime.db, runtime.metrics)
        runtime.services["market_ingestor"] = ingestor
        ingestor.start()
        stack.push_async_callback(ingestor.aclose)
        log.info("market ingestion running in-process", extra={"source": service.source})


START_HOOKS.append(start_market)
