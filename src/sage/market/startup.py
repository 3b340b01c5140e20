"""Start the market domain: the MarketService every API task reads, and, in the embedded
default (SAGE_INGEST_IN_PROCESS, on when VALKEY_URL is unset), the ingestor in this process
behind the same per-feed leases `sage ingest` uses."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sage.market.ingest import Ingestor
from sage.market.service import MarketService
from sage.observability.metrics import Metrics
from sage.settings import MarketSource, Settings
from sage.store.cache import Cache
from sage.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MarketDomain:
    service: MarketService
    ingestor: Ingestor | None


async def start_market(
    settings: Settings, cache: Cache, db: Database, metrics: Metrics, stack: AsyncExitStack
) -> MarketDomain:
    service = MarketService(settings, cache, db, metrics)
    stack.push_async_callback(service.close)
    ingestor: Ingestor | None = None
    if settings.ingest_in_process and settings.market_source is not MarketSource.OFF:
        ingestor = Ingestor(settings, cache, db, metrics)
        ingestor.start()
        stack.push_async_callback(ingestor.aclose)
        log.info("market ingestion running in-process", extra={"source": service.source})
    return MarketDomain(service=service, ingestor=ingestor)
