"""Everything one Sage process holds, started and stopped in order.

`Runtime.start()` resolves the embedded default (embedded PostgreSQL with migrations
applied, in-process cache) or connects to the configured services. Domains that need
background work (market ingestion, notifier queues, alert rules) register start/stop
hooks here so the app factory stays free of business logic.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from sage.auth.denylist import AccessDenylist
from sage.auth.service import AuthService
from sage.auth.tokens import TokenCodec
from sage.observability.metrics import Metrics
from sage.ops import schema
from sage.settings import Settings
from sage.store.cache import TTL, Cache, create_backend
from sage.store.db import Database, create_engine
from sage.store.embedded_pg import EmbeddedPostgres, start_embedded_postgres
from sage.store.ratelimit import RateLimiter

log = logging.getLogger(__name__)

Hook = Callable[["Runtime", AsyncExitStack], Awaitable[None]]
# Domain start-up hooks, in order. Each may push its own cleanup onto the exit stack.
START_HOOKS: list[Hook] = []


@dataclass
class Runtime:
    settings: Settings
    db: Database
    cache: Cache
    metrics: Metrics
    auth: AuthService
    limiter: RateLimiter
    database_url: str
    embedded_pg: EmbeddedPostgres | None = None
    services: dict[str, Any] = field(default_factory=dict)  # domain services by name

    @classmethod
    async def start(cls, settings: Settings, stack: AsyncExitStack, *, metrics: Metrics | None = None) -> Runtime:
        metrics = metrics or Metrics()
        embedded: EmbeddedPostgres | None = None
        url = settings.database_url
        if url is None:
            embedded = start_embedded_postgres(settings.data_dir)
            stack.callback(embedded.stop)
            url = embedded.url
            log.info("embedded PostgreSQL started", extra={"pgdata": str(embedded.pgdata)})
            await schema.upgrade(url)
        db = Database(create_engine(settings, url))
        stack.push_async_callback(db.dispose)
        backend = create_backend(settings.valkey_url, timeout=settings.valkey_timeout_seconds)
        ttl = TTL(
            market_price=settings.cache_ttl_market_price,
            fear_greed=settings.cache_ttl_fear_greed,
            user_chat_list=settings.cache_ttl_user_chat_list,
            ai_response=settings.cache_ttl_ai_response,
        )
        cache = Cache(backend, ttl=ttl, on_error=lambda: metrics.incr("ValkeyErrors"))
        stack.push_async_callback(cache.close)
        codec = TokenCodec(
            settings.secret_value("jwt_secret") or "",
            access_ttl=settings.jwt_access_ttl_seconds,
            refresh_ttl=settings.jwt_refresh_ttl_seconds,
        )
        runtime = cls(
            settings=settings,
            db=db,
            cache=cache,
            metrics=metrics,
            auth=AuthService(db, codec, AccessDenylist(cache)),
            limiter=RateLimiter(cache),
            database_url=url,
            embedded_pg=embedded,
        )
        import sage.hooks  # noqa: F401  (registers domain hooks)

        for hook in START_HOOKS:
            await hook(runtime, stack)
        return runtime
