"""Keeping the stored catalog current: the ingestor's `catalog` feed (live data) reads both
exchanges' market lists on start and every SAGE_CATALOG_REFRESH_SECONDS; the embedded
default (replay, offline) seeds it once from the list shipped with the replay data.

Each exchange is refreshed on its own: a failure (network, 5xx, 429, a malformed or
implausibly short answer) leaves that exchange's stored rows as they were and is retried
sooner than the daily refresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from sage.market.catalog import RefreshRejected, save_listings, stored_count
from sage.market.catalog_sources import (
    SEED_FILE,
    CatalogFormatError,
    Listing,
    fetch_binance,
    fetch_gateio,
    load_seed,
)
from sage.market.history import DB_ERRORS, stop_if_cancelled
from sage.market.rest import ExchangeApis, RestError
from sage.observability.metrics import Metrics
from sage.store.db import Database

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE_SECONDS = 300.0


async def seed_catalog(db: Database, path: Path = SEED_FILE) -> dict[str, int]:
    """Store the shipped list for each exchange that has no stored rows yet (a catalog
    refreshed from the exchanges before is never replaced by the smaller seed)."""
    out: dict[str, int] = {}
    for exchange, listings in load_seed(path).items():
        out[exchange] = 0 if await stored_count(db, exchange) else await save_listings(db, exchange, listings)
    return out


class CatalogRefresher:
    def __init__(
        self,
        db: Database,
        apis: ExchangeApis,
        metrics: Metrics,
        *,
        interval: float,
        retry_after_failure: float = RETRY_AFTER_FAILURE_SECONDS,
        on_refreshed: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.db = db
        self.apis = apis
        self.metrics = metrics
        self.interval = interval
        self.retry_after_failure = min(retry_after_failure, interval)
        self.on_refreshed = on_refreshed
        self.results: dict[str, int | str] = {}  # last outcome per exchange: pairs stored, or the error
        self.refreshes = 0

    async def refresh_once(self) -> dict[str, int | str]:
        sources: dict[str, Callable[[], Awaitable[list[Listing]]]] = {
            "binance": lambda: fetch_binance(self.apis.binance, self.apis.binance_budget),
            "gateio": lambda: fetch_gateio(self.apis.gateio, self.apis.gateio_budget("spot/currency_pairs")),
        }
        results: dict[str, int | str] = {}
        for exchange, fetch in sources.items():
            try:
                results[exchange] = await save_listings(self.db, exchange, await fetch())
            except (RestError, CatalogFormatError, RefreshRejected, *DB_ERRORS) as exc:
                stop_if_cancelled()
                results[exchange] = f"{type(exc).__name__}: {exc}"[:300]
                self.metrics.incr("CatalogRefreshFailures", exchange=exchange)
                log.warning("symbol catalog not refreshed; keeping the stored one", extra={"exchange": exchange})
        self.results = results
        self.refreshes += 1
        if self.on_refreshed is not None and any(isinstance(v, int) for v in results.values()):
            await self.on_refreshed()
        return results

    async def run(self) -> None:
        while True:
            results = await self.refresh_once()
            failed = any(isinstance(v, str) for v in results.values())
            stop_if_cancelled()
            await asyncio.sleep(self.retry_after_failure if failed else self.interval)
