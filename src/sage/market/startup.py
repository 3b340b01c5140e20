"""Start the market domain: the MarketService every API task reads, and, in the embedded
default (SAGE_INGEST_IN_PROCESS, on when VALKEY_URL is unset), the ingestor in this process
behind the same per-feed leases `sage ingest` uses."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass

from sage.market.catalog import SymbolCatalog
from sage.market.catalog_refresh import seed_catalog
from sage.market.demand import DemandSet
from sage.market.history import DB_ERRORS
from sage.market.ingest import Ingestor
from sage.market.models import EXCHANGES
from sage.market.rest import ExchangeApis, build_exchange_apis
from sage.market.service import MarketService
from sage.market.snapshot import SnapshotFetcher
from sage.observability.metrics import Metrics
from sage.settings import MarketSource, Settings
from sage.store.cache import Cache
from sage.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MarketDomain:
    service: MarketService
    ingestor: Ingestor | None
    catalog: SymbolCatalog


async def start_market(
    settings: Settings, cache: Cache, db: Database, metrics: Metrics, stack: AsyncExitStack
) -> MarketDomain:
    catalog = SymbolCatalog(db, configured=settings.symbols, exchanges=EXCHANGES)
    if settings.market_source is MarketSource.REPLAY:
        # Offline: search works from the list shipped with the recording (never replacing
        # a catalog once read from the exchanges).
        try:
            await seed_catalog(db)
        except DB_ERRORS as exc:
            log.warning("symbol catalog not seeded", extra={"error": type(exc).__name__})
    await catalog.reload()
    reloads = asyncio.create_task(catalog.run_reloads(settings.catalog_reload_seconds), name="catalog-reloads")
    stack.push_async_callback(_cancel, reloads)
    apis: ExchangeApis | None = None
    snapshots: SnapshotFetcher | None = None
    if settings.market_source is MarketSource.LIVE:
        apis = build_exchange_apis(
            binance_url=settings.binance_rest_url,
            gateio_url=settings.gateio_rest_url,
            cache=cache,
            metrics=metrics,
            timeout=settings.rest_timeout_seconds,
            binance_weight_per_minute=settings.binance_rest_weight_per_minute,
            gateio_per_second=settings.gateio_rest_requests_per_second,
            max_wait=2.0,  # a request waits briefly for the shared budget, then says "not yet"
        )
        stack.push_async_callback(apis.close)
        snapshots = SnapshotFetcher(apis, cache)
    demand = (
        DemandSet(cache, ttl=settings.demand_ttl_seconds) if settings.market_source is not MarketSource.OFF else None
    )
    service = MarketService(settings, cache, db, metrics, catalog=catalog, demand=demand, snapshots=snapshots)
    stack.push_async_callback(service.close)
    ingestor: Ingestor | None = None
    if settings.ingest_in_process and settings.market_source is not MarketSource.OFF:
        ingestor = Ingestor(settings, cache, db, metrics, catalog=catalog)
        ingestor.start()
        stack.push_async_callback(ingestor.aclose)
        log.info("market ingestion running in-process", extra={"source": service.source})
    return MarketDomain(service=service, ingestor=ingestor, catalog=catalog)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
