"""Gauges read on an interval: the database pool and Valkey memory."""

from __future__ import annotations

from sage.observability.metrics import Metrics
from sage.store.cache import Cache, CacheUnavailable
from sage.store.db import Database


def sample_db_pool(db: Database, metrics: Metrics) -> None:
    """DBPoolInUse / DBPoolSize (connections) and DBPoolUsage (percent of the most the pool may open)."""
    in_use, size = db.pool_status()
    metrics.gauge("DBPoolInUse", in_use, unit="Count")
    metrics.gauge("DBPoolSize", size, unit="Count")
    if size > 0:
        metrics.gauge("DBPoolUsage", in_use / size * 100, unit="Percent")


async def sample_valkey_memory(cache: Cache, metrics: Metrics) -> None:
    """ValkeyMemoryUsed (bytes) and ValkeyMemoryUsage (percent of maxmemory, when one is set)."""
    try:
        used, maximum = await cache.backend.info_memory()
    except CacheUnavailable as exc:
        cache.report_failure("info_memory", exc)  # counts ValkeyErrors
        return
    metrics.gauge("ValkeyMemoryUsed", used, unit="Bytes")
    if maximum > 0:
        metrics.gauge("ValkeyMemoryUsage", used / maximum * 100, unit="Percent")
