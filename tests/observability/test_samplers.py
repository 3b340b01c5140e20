"""The database-pool and Valkey-memory gauges."""

from __future__ import annotations

from sage.observability.metrics import Metrics
from sage.observability.samplers import sample_db_pool, sample_valkey_memory
from sage.store.cache import Cache, CacheUnavailable
from sage.store.cache_memory import MemoryBackend
from sage.store.cache_setup import create_backend
from sage.store.db import Database, create_engine


async def test_the_pool_gauges_follow_checked_out_connections(settings, database_url):
    db = Database(create_engine(settings, database_url, pool_size=4))
    metrics = Metrics()
    try:
        async with db.engine.connect() as first, db.engine.connect() as second:
            await first.exec_driver_sql("SELECT 1")
            await second.exec_driver_sql("SELECT 1")
            sample_db_pool(db, metrics)
            size = 4 + settings.db_max_overflow
            assert metrics.value("DBPoolInUse") == 2
            assert metrics.value("DBPoolSize") == size
            assert metrics.value("DBPoolUsage") == 2 / size * 100
        sample_db_pool(db, metrics)
        assert metrics.value("DBPoolInUse") == 0
    finally:
        await db.dispose()


async def test_valkey_memory_in_use_is_read_from_the_server(valkey_url):
    cache = Cache(create_backend(valkey_url))
    metrics = Metrics()
    try:
        await sample_valkey_memory(cache, metrics)
    finally:
        await cache.close()
    assert metrics.value("ValkeyMemoryUsed") > 0


class LimitedBackend(MemoryBackend):
    async def info_memory(self) -> tuple[int, int]:
        return 850, 1000


class DownBackend(MemoryBackend):
    async def info_memory(self) -> tuple[int, int]:
        raise CacheUnavailable("connection refused")


async def test_valkey_memory_usage_is_a_percentage_of_maxmemory():
    metrics = Metrics()
    await sample_valkey_memory(Cache(LimitedBackend()), metrics)
    assert metrics.value("ValkeyMemoryUsage") == 85.0


async def test_no_percentage_without_a_memory_limit():
    metrics, backend = Metrics(), MemoryBackend()
    await backend.set("key", b"value")
    await sample_valkey_memory(Cache(backend), metrics)
    assert ("ValkeyMemoryUsage", ()) not in metrics.snapshot()
    assert metrics.value("ValkeyMemoryUsed") > 0


async def test_an_unreachable_valkey_counts_as_a_valkey_error():
    metrics = Metrics()
    cache = Cache(DownBackend(), on_error=lambda: metrics.incr("ValkeyErrors"))
    await sample_valkey_memory(cache, metrics)
    assert metrics.value("ValkeyErrors") == 1
