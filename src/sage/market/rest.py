"""The exchanges' public REST APIs, within their limits across every Sage task.

Binance counts request *weight* per IP per minute (6000 published in exchangeInfo's
`REQUEST_WEIGHT`); every answer carries `X-MBX-USED-WEIGHT-1M`; past the limit it answers
429 with `Retry-After`, and an IP that keeps going is banned with 418 (2 minutes up to
3 days, `Retry-After` until the ban ends). Gate.io limits public endpoints per endpoint
(200 requests per 10 s per IP) and answers 429 `TOO_MANY_REQUESTS`.

Every API task and the ingestor share one token bucket per budget in Valkey (the cache's
`take_token`), so the number of users or tasks never multiplies the rate. A 429/418 or a
used weight near the exchange's limit (other clients on the same IP) sets a shared
cooldown key that every task honours before its next request. Without Valkey there is no
shared bucket, so no request is made at all (`RestUnavailable`): never exceeding the
limits matters more than a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from sage.observability.metrics import Metrics
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

BINANCE_WEIGHT_LIMIT_PER_MINUTE = 6000  # exchangeInfo rateLimits REQUEST_WEIGHT, per IP
BINANCE_WEIGHT_HEADER = "x-mbx-used-weight-1m"
# Above this share of Binance's own limit (as its header reports it) every task pauses until
# the next minute: something else on our IP is using weight too.
BINANCE_PAUSE_AT = 0.9


class RestError(Exception):
    """A REST call failed (network, 5xx, an error body); the message says which."""


class RestUnavailable(RestError):
    """Not attempted: the shared limiter is unreachable, or the exchange asked us to wait
    longer than the caller may (`retry_after` seconds)."""

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Budget:
    """A token bucket: `capacity` units at once, refilled at `per_second`. Over any 60 s at
    most capacity + 60 * per_second units pass, which is what must stay under the limit."""

    name: str
    capacity: float
    per_second: float


def binance_budget(weight_per_minute: int) -> Budget:
    # A burst of a tenth of the minute's share: at most 1.1x the share in any minute.
    return Budget("binance", capacity=max(20.0, weight_per_minute / 10), per_second=weight_per_minute / 60)


def gateio_budget(endpoint: str, per_second: float) -> Budget:
    # Gate limits each endpoint separately: 2 s of burst, at most 12 s worth in any 10 s.
    return Budget(f"gateio:{endpoint}", capacity=max(1.0, per_second * 2), per_second=per_second)


class ExchangeRest:
    """GET JSON from one exchange's REST base URL, paying `cost` from `budget` first."""

    def __init__(
        self,
        exchange: str,
        base_url: str,
        cache: Cache,
        metrics: Metrics,
        *,
        timeout: float = 10.0,
        max_wait: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.exchange = exchange
        self.base_url = base_url.rstrip("/")
        self.cache = cache
        self.metrics = metrics
        self.max_wait = max_wait
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"User-Agent": "sage-market", "Accept": "application/json"},
        )
        self.cooldown_key = cache.key("market", "rest", "cooldown", exchange)
        self.requests = 0
        self.weight_used = 0.0  # what this client paid from its budgets
        self.last_used_weight: int | None = None  # Binance's own count for our IP

    async def close(self) -> None:
        await self.client.aclose()

    async def get(self, path: str, params: Mapping[str, str | int] | None, *, budget: Budget, cost: float) -> Any:
        await self._wait_turn(budget, cost)
        self.requests += 1
        self.weight_used += cost
        try:
            response = await self.client.get(self.base_url + path, params=dict(params or {}))
        except httpx.HTTPError as exc:
            self.metrics.incr("FeedErrors", exchange=self.exchange)
            raise RestError(f"{self.exchange} {path}: {type(exc).__name__}") from None
        await self._observe(response)
        if response.status_code in (418, 429):
            retry_after = _retry_after(response)
            await self._cool_down(retry_after)
            self.metrics.incr("RestLimited", exchange=self.exchange)
            log.warning(
                "exchange REST limit hit; backing off",
                extra={"exchange": self.exchange, "status": response.status_code, "retry_after": retry_after},
            )
            raise RestUnavailable(
                f"{self.exchange} asked us to wait {retry_after:.0f} s (HTTP {response.status_code})",
                retry_after=retry_after,
            )
        if response.status_code >= 400:
            self.metrics.incr("FeedErrors", exchange=self.exchange)
            raise RestError(f"{self.exchange} {path}: HTTP {response.status_code} {response.text[:200]}")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            self.metrics.incr("FeedMalformed", exchange=self.exchange)
            raise RestError(f"{self.exchange} {path}: invalid JSON") from None

    async def _wait_turn(self, budget: Budget, cost: float) -> None:
        """Sleep until the shared cooldown is over and the bucket has `cost` units, as long
        as that is within `max_wait`; otherwise RestUnavailable."""
        deadline = time.monotonic() + self.max_wait
        bucket = self.cache.key("market", "rest", "bucket", budget.name)
        while True:
            try:
                until = await self.cache.backend.get(self.cooldown_key)
                wait = max(0.0, float(until) - time.time()) if until else 0.0
                if wait <= 0:
                    wait = await self.cache.backend.take_token(bucket, budget.capacity, budget.per_second, cost)
            except CacheUnavailable as exc:
                self.cache.report_failure("exchange REST limiter", exc)
                raise RestUnavailable(f"{self.exchange} REST limiter unavailable") from None
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise RestUnavailable(f"{self.exchange} REST budget exhausted for {wait:.0f} s", retry_after=wait)
            await asyncio.sleep(wait)

    async def _observe(self, response: httpx.Response) -> None:
        used = response.headers.get(BINANCE_WEIGHT_HEADER)
        if used is None or not used.isdigit():
            return
        self.last_used_weight = int(used)
        if self.last_used_weight >= BINANCE_WEIGHT_LIMIT_PER_MINUTE * BINANCE_PAUSE_AT:
            # Binance's window is the calendar minute: wait for the next one.
            await self._cool_down(60.0 - time.time() % 60.0)

    async def _cool_down(self, seconds: float) -> None:
        until = time.time() + seconds
        try:
            current = await self.cache.backend.get(self.cooldown_key)
            if current is not None and float(current) >= until:
                return
            await self.cache.backend.set(self.cooldown_key, f"{until:.3f}".encode(), ttl=seconds + 1)
        except CacheUnavailable as exc:
            self.cache.report_failure("exchange REST cooldown", exc)


def _retry_after(response: httpx.Response) -> float:
    """Binance sends `Retry-After`; Gate.io the end of its window as a Unix time."""
    for header, relative in (("retry-after", True), ("x-gate-ratelimit-reset-timestamp", False)):
        raw = response.headers.get(header)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        return max(1.0, value if relative else value - time.time())
    return 60.0  # no usable header: a full Binance window


class ExchangeApis:
    """Both exchanges' REST clients and their budgets, built once per process."""

    def __init__(
        self,
        binance: ExchangeRest,
        gateio: ExchangeRest,
        *,
        binance_weight_per_minute: int,
        gateio_per_second: float,
    ) -> None:
        self.binance = binance
        self.gateio = gateio
        self.binance_budget = binance_budget(binance_weight_per_minute)
        self.gateio_per_second = gateio_per_second

    def gateio_budget(self, endpoint: str) -> Budget:
        return gateio_budget(endpoint, self.gateio_per_second)

    async def close(self) -> None:
        await self.binance.close()
        await self.gateio.close()


def build_exchange_apis(
    *,
    binance_url: str,
    gateio_url: str,
    cache: Cache,
    metrics: Metrics,
    timeout: float,
    binance_weight_per_minute: int,
    gateio_per_second: float,
    max_wait: float = 30.0,
) -> ExchangeApis:
    return ExchangeApis(
        ExchangeRest("binance", binance_url, cache, metrics, timeout=timeout, max_wait=max_wait),
        ExchangeRest("gateio", gateio_url, cache, metrics, timeout=timeout, max_wait=max_wait),
        binance_weight_per_minute=binance_weight_per_minute,
        gateio_per_second=gateio_per_second,
    )
