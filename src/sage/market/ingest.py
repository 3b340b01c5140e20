"""The ingestor: feeds -> pipeline -> Valkey / PostgreSQL (`sage ingest`, or in-process
in the embedded default).

Each feed (binance, gateio, fear_greed; or replay) runs only while this process holds
its Valkey lease, so starting two ingestors never doubles the exchange connections:
the second waits as a standby, renewing nothing, and takes over within one lease
period when the active one stops renewing (crash, network partition, shutdown). A
holder that cannot reach Valkey stops its feed before its lease can have lapsed, so
two ingestors are never active for one feed at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sage.market.backfill import CandleBackfill
from sage.market.candles import CandleAggregator, CandleStore
from sage.market.catalog import SymbolCatalog
from sage.market.catalog_refresh import CatalogRefresher
from sage.market.demand import DemandSet
from sage.market.feeds.binance import BinanceFeed
from sage.market.feeds.fear_greed import HISTORY_LIMIT, FearGreedPoller
from sage.market.feeds.gateio import GateioFeed
from sage.market.history import DB_ERRORS, FearGreedSink, fear_greed_history_complete, stop_if_cancelled
from sage.market.live import ExchangeFeedRunner, RunnerOptions
from sage.market.models import EXCHANGES
from sage.market.pipeline import MarketPipeline
from sage.market.replay import ReplaySource
from sage.market.rest import ExchangeApis, build_exchange_apis
from sage.market.subscriptions import LiveSubscriptions
from sage.observability.metrics import Metrics
from sage.settings import MarketSource, Settings
from sage.store.cache import Cache, CacheUnavailable
from sage.store.db import Database

log = logging.getLogger(__name__)


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeasedFeed:
    """Runs `work()` only while holding the lease `key`; renews it every ttl/3."""

    def __init__(
        self,
        name: str,
        cache: Cache,
        owner: str,
        work: Callable[[], Coroutine[Any, Any, None]],
        *,
        ttl: float,
        metrics: Metrics,
    ) -> None:
        self.name = name
        self.cache = cache
        self.key = cache.key("market", "lease", name)
        self.owner = owner
        self.work = work
        self.ttl = ttl
        self.metrics = metrics
        self.active = False
        self.activations = 0
        self.attempts = 0

    async def _acquire(self) -> bool:
        self.attempts += 1
        try:
            return await self.cache.backend.acquire_lease(self.key, self.owner, self.ttl)
        except CacheUnavailable as exc:
            self.cache.report_failure("market lease", exc)
            return False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        renew_every = self.ttl / 3
        while True:
            started = loop.time()
            if not await self._acquire():
                await asyncio.sleep(renew_every)
                continue
            valid_until = started + self.ttl
            self.active = True
            self.activations += 1
            self.metrics.gauge("IngestorActive", 1, feed=self.name)
            log.info("ingesting: lease acquired", extra={"feed": self.name, "owner": self.owner})
            task = asyncio.create_task(self.work(), name=f"feed:{self.name}")
            try:
                while True:
                    done, _ = await asyncio.wait({task}, timeout=renew_every)
                    if done:
                        exc = task.exception()
                        log.error("feed stopped unexpectedly; restarting", exc_info=exc, extra={"feed": self.name})
                        await asyncio.sleep(min(5.0, renew_every))
                        task = asyncio.create_task(self.work(), name=f"feed:{self.name}")
                    attempt = loop.time()
                    if await self._acquire():
                        valid_until = attempt + self.ttl
                        continue
                    # Lost to another owner, or Valkey unreachable: stop while our lease
                    # is certainly still ours, before anyone else can take it over.
                    if loop.time() + renew_every >= valid_until or await self._held_by_other():
                        log.warning("lease lost; standing by", extra={"feed": self.name, "owner": self.owner})
                        break
            finally:
                task.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await task
                self.active = False
                self.metrics.gauge("IngestorActive", 0, feed=self.name)

    async def _held_by_other(self) -> bool:
        try:
            holder = await self.cache.backend.get(self.key)
        except CacheUnavailable:
            return False
        return holder is not None and holder != self.owner.encode()

    async def release(self) -> None:
        try:
            await self.cache.backend.release_lease(self.key, self.owner)
        except CacheUnavailable as exc:
            self.cache.report_failure("market lease release", exc)


@dataclass
class IngestOptions:
    candle_flush_seconds: float = 5.0
    stale_check_seconds: float = 5.0
    fng_timeout_seconds: float = 10.0
    runner: RunnerOptions | None = None


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        cache: Cache,
        db: Database,
        metrics: Metrics,
        *,
        owner: str | None = None,
        options: IngestOptions | None = None,
        catalog: SymbolCatalog | None = None,
        apis: ExchangeApis | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.db = db
        self.metrics = metrics
        self.owner = owner or default_owner()
        self.options = options or IngestOptions()
        self.candles = CandleAggregator()
        self.pipeline = MarketPipeline(cache, metrics, queue_size=settings.feed_queue_size, candles=self.candles)
        self.candle_store = CandleStore(
            db,
            self.candles,
            metrics,
            retention_days=settings.candle_retention_days,
            flush_seconds=self.options.candle_flush_seconds,
        )
        self.fear_greed_sink = FearGreedSink(cache, db)
        self.binance = BinanceFeed(
            settings.symbols,
            base_url=settings.binance_ws_url,
            streams_per_connection=settings.binance_streams_per_connection,
            max_connection_seconds=settings.binance_connection_max_seconds,
            heartbeat_seconds=min(15.0, settings.feed_watchdog_seconds / 2),
        )
        self.gateio = GateioFeed(
            settings.symbols, url=settings.gateio_ws_url, ping_seconds=settings.gateio_ping_seconds
        )
        self.runners: dict[str, ExchangeFeedRunner] = {}
        self.catalog = catalog or SymbolCatalog(db, configured=settings.symbols, exchanges=EXCHANGES)
        self._own_apis = apis is None and settings.market_source is MarketSource.LIVE
        self.apis = apis
        if self._own_apis:
            self.apis = build_exchange_apis(
                binance_url=settings.binance_rest_url,
                gateio_url=settings.gateio_rest_url,
                cache=cache,
                metrics=metrics,
                timeout=settings.rest_timeout_seconds,
                binance_weight_per_minute=settings.binance_rest_weight_per_minute,
                gateio_per_second=settings.gateio_rest_requests_per_second,
            )
        self.catalog_refresher: CatalogRefresher | None = None
        self.subscriptions: LiveSubscriptions | None = None
        self.backfill: CandleBackfill | None = None
        if settings.market_source is MarketSource.LIVE:
            assert self.apis is not None
            self.backfill = CandleBackfill(db, self.apis, self.catalog, metrics)
            self.catalog_refresher = CatalogRefresher(
                db, self.apis, metrics, interval=settings.catalog_refresh_seconds, on_refreshed=self.catalog.reload
            )
            self.subscriptions = LiveSubscriptions(
                DemandSet(cache, ttl=settings.demand_ttl_seconds),
                self.catalog,
                lambda: self.runners,
                configured=settings.symbols,
                max_live=settings.max_live_symbols,
                on_new=self.backfill.request,
            )
        self.replay: ReplaySource | None = None
        self.fear_greed: FearGreedPoller | None = None
        self.leases = self._leases()
        self._task: asyncio.Task[None] | None = None

    def _runner_options(self) -> RunnerOptions:
        if self.options.runner is not None:
            return self.options.runner
        s = self.settings
        return RunnerOptions(
            backoff_initial=s.feed_backoff_initial_seconds,
            backoff_max=s.feed_backoff_max_seconds,
            reset_after=s.feed_backoff_reset_seconds,
            watchdog=s.feed_watchdog_seconds,
        )

    def _leases(self) -> list[LeasedFeed]:
        s = self.settings
        ttl = s.feed_lease_seconds

        def leased(name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> LeasedFeed:
            return LeasedFeed(name, self.cache, self.owner, work, ttl=ttl, metrics=self.metrics)

        if s.market_source is MarketSource.REPLAY:
            return [leased("replay", self._run_replay)]
        if s.market_source is MarketSource.LIVE:
            assert self.catalog_refresher is not None
            return [
                leased("binance", lambda: self._run_exchange(self.binance)),
                leased("gateio", lambda: self._run_exchange(self.gateio)),
                leased("fear_greed", self._run_fear_greed),
                leased("catalog", self.catalog_refresher.run),
                leased("backfill", self._run_backfill),
            ]
        return []

    async def _run_exchange(self, feed: BinanceFeed | GateioFeed) -> None:
        runner = ExchangeFeedRunner(feed, self.pipeline, self.metrics, self._runner_options())
        self.runners[feed.exchange] = runner
        try:
            await runner.run()
        finally:
            self.runners.pop(feed.exchange, None)

    async def _run_backfill(self) -> None:
        """Queue every configured and live symbol (filling any gap left while no ingestor
        ran), then drain the queue; newly demanded symbols join it as they come."""
        assert self.backfill is not None and self.subscriptions is not None
        self.backfill.request([*self.settings.symbols, *self.subscriptions.live])
        await self.backfill.run()

    async def _run_fear_greed(self) -> None:
        try:
            complete = await fear_greed_history_complete(self.db)
        except DB_ERRORS:
            stop_if_cancelled()
            complete = True  # unknown: don't ask for the full history on every retry
        self.fear_greed = FearGreedPoller(
            self.settings.fng_url,
            self.fear_greed_sink,
            self.metrics,
            interval=self.settings.fng_poll_seconds,
            timeout=self.options.fng_timeout_seconds,
            # `limit=0` is the whole history since 2018, fetched once and kept.
            history_limit=HISTORY_LIMIT if complete else 0,
        )
        await self.fear_greed.run()

    async def _run_replay(self) -> None:
        path: Path | None = self.settings.replay_file
        self.replay = ReplaySource(
            {"binance": self.binance, "gateio": self.gateio},
            self.pipeline,
            self.metrics,
            path=path,
            fear_greed_sink=self.fear_greed_sink,
            speed=self.settings.replay_speed,
        )
        await self.replay.run()

    @property
    def active_feeds(self) -> set[str]:
        return {lease.name for lease in self.leases if lease.active}

    async def run(self) -> None:
        """Run until cancelled. Cancelling does not release the leases (a crash doesn't
        either); `aclose()` does, so a standby can take over at once."""
        await self.catalog.reload()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.catalog.run_reloads(self.settings.catalog_reload_seconds), name="market-catalog")
            if self.subscriptions is not None:
                group.create_task(self.subscriptions.run(), name="market-subscriptions")
            group.create_task(self.pipeline.run(), name="market-pipeline")
            group.create_task(self.candle_store.run(), name="market-candles")
            group.create_task(self._monitor(), name="market-monitor")
            for lease in self.leases:
                group.create_task(lease.run(), name=f"lease:{lease.name}")

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="market-ingestor")
        return self._task

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        try:
            await self.pipeline.flush()
            await self.candle_store.flush()
        except Exception:  # shutting down: what could not be written is logged, not fatal
            log.warning("final market flush failed", exc_info=True)
        for lease in self.leases:
            await lease.release()
        if self._own_apis and self.apis is not None:
            await self.apis.close()

    async def _monitor(self) -> None:
        """FeedStaleSymbols per exchange this process is ingesting."""
        while True:
            await asyncio.sleep(self.options.stale_check_seconds)
            active = self.active_feeds
            if "replay" in active:
                expected_exchanges = ["binance", "gateio"]
            else:
                expected_exchanges = [name for name in ("binance", "gateio") if name in active]
            expected = [(ex, sym) for ex in expected_exchanges for sym in self.settings.symbols]
            counts = self.pipeline.stale_counts(datetime.now(UTC), self.settings.ticker_stale_seconds, expected)
            for exchange, count in counts.items():
                self.metrics.gauge("FeedStaleSymbols", count, exchange=exchange)


async def run_standalone(settings: Settings, metrics: Metrics, stop: asyncio.Event) -> None:
    """`sage ingest`: its own engine and cache client; runs until `stop` is set, then
    flushes and releases its leases so a standby takes over at once."""
    from sage.store.cache_setup import build_cache
    from sage.store.db import create_engine

    assert settings.database_url is not None
    db = Database(create_engine(settings, settings.database_url, pool_size=settings.ingest_db_pool_size))
    cache = build_cache(settings, on_error=lambda: metrics.incr("ValkeyErrors"))
    ingestor = Ingestor(settings, cache, db, metrics)
    task = ingestor.start()
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    finally:
        stopped.cancel()
        await ingestor.aclose()
        await cache.close()
        await db.dispose()
