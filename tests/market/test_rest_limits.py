"""Exchange REST limits: one token bucket in Valkey shared by every task, and a shared
back-off after 429 / 418 or when Binance reports our IP's weight near its limit."""

from __future__ import annotations

import asyncio
import time

import pytest

from sage.market.rest import Budget, ExchangeRest, RestUnavailable
from tests.market.fakes_rest import FakeBinanceRest, FakeGateioRest

TICKER = "/api/v3/ticker/24hr"
LINK = {"symbol": "LINKUSDT"}
# Refill so slow that only the burst counts: the outcome does not depend on timing.
NO_REFILL = Budget("test", capacity=20, per_second=0.0001)


def client(url: str, cache, metrics, exchange: str = "binance", max_wait: float = 0.2) -> ExchangeRest:
    return ExchangeRest(exchange, url, cache, metrics, timeout=5.0, max_wait=max_wait)


async def test_tasks_share_one_budget_so_their_sum_never_exceeds_it(binance_rest: FakeBinanceRest, cache, metrics):
    tasks = [client(binance_rest.url, cache, metrics) for _ in range(4)]  # four API tasks
    try:
        outcomes = await asyncio.gather(
            *(tasks[n % 4].get(TICKER, LINK, budget=NO_REFILL, cost=2) for n in range(30)), return_exceptions=True
        )
    finally:
        for t in tasks:
            await t.close()
    answered = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, RestUnavailable)]
    assert len(answered) == 10 and len(refused) == 20
    assert binance_rest.total_weight() == 20  # what reached the exchange: exactly the budget


def minutes_now_and_next() -> list[int]:
    """The fakes count per calendar minute (window); fill both so a boundary never matters."""
    minute = int(time.time() // 60)
    return [minute, minute + 1]


async def test_a_429_makes_every_task_wait_for_retry_after(binance_rest, cache, metrics):
    binance_rest.weight_limit = 3
    for minute in minutes_now_and_next():
        binance_rest.weights[minute] = 2  # the next request goes over
    a, b = client(binance_rest.url, cache, metrics), client(binance_rest.url, cache, metrics)
    budget = Budget("roomy", capacity=1000, per_second=100)
    try:
        with pytest.raises(RestUnavailable) as refused:
            await a.get(TICKER, LINK, budget=budget, cost=2)
        assert refused.value.retry_after >= 1
        calls = len(binance_rest.requests)
        with pytest.raises(RestUnavailable):  # another task: not even sent
            await b.get(TICKER, LINK, budget=budget, cost=2)
        assert len(binance_rest.requests) == calls
        assert metrics.value("RestLimited", exchange="binance") == 1
    finally:
        await a.close()
        await b.close()


async def test_a_418_ban_is_honoured_until_it_ends(binance_rest, cache, metrics):
    binance_rest.banned_until = time.time() + 120
    rest = client(binance_rest.url, cache, metrics)
    try:
        with pytest.raises(RestUnavailable) as refused:
            await rest.get(TICKER, LINK, budget=Budget("b", 100, 10), cost=2)
        assert refused.value.retry_after >= 100
        until = float(await cache.backend.get(cache.key("market", "rest", "cooldown", "binance")))
        assert until >= time.time() + 100
    finally:
        await rest.close()


async def test_weight_used_near_binances_limit_pauses_everyone_until_the_next_minute(binance_rest, cache, metrics):
    for minute in minutes_now_and_next():
        binance_rest.weights[minute] = 5500  # someone else on our IP used most of it
    rest = client(binance_rest.url, cache, metrics)
    before = time.time()
    try:
        await rest.get(TICKER, LINK, budget=Budget("b", 100, 10), cost=2)
        assert rest.last_used_weight == 5502
        until = float(await cache.backend.get(cache.key("market", "rest", "cooldown", "binance")))
        assert before < until <= before + 61
        assert min(until % 60, 60 - until % 60) < 1.0  # at a minute boundary
    finally:
        await rest.close()


async def test_gateio_429_backs_off_until_its_window_resets(gateio_rest: FakeGateioRest, cache, metrics):
    gateio_rest.limit_per_10s = 5
    window = int(time.time() // 10)
    for w in (window, window + 1):
        gateio_rest.windows[("/api/v4/spot/tickers", w)] = 5  # the endpoint's window is used up
    rest = client(gateio_rest.url, cache, metrics, exchange="gateio")
    budget = Budget("g", capacity=100, per_second=100)
    try:
        with pytest.raises(RestUnavailable) as refused:
            await rest.get("/spot/tickers", {"currency_pair": "LINK_USDT"}, budget=budget, cost=1)
        assert 1 <= refused.value.retry_after <= 21
        assert gateio_rest.limited_answers == 1
        until = float(await cache.backend.get(cache.key("market", "rest", "cooldown", "gateio")))
        assert until > time.time()
    finally:
        await rest.close()


async def test_without_valkey_no_request_is_made(binance_rest, metrics):
    from sage.store.cache import Cache
    from sage.store.cache_setup import create_backend

    dead = Cache(create_backend("redis://127.0.0.1:1", timeout=0.2), error_log_interval=0)
    rest = client(binance_rest.url, dead, metrics)
    try:
        with pytest.raises(RestUnavailable, match="limiter unavailable"):
            await rest.get(TICKER, LINK, budget=Budget("b", 100, 10), cost=2)
        assert binance_rest.requests == []
    finally:
        await rest.close()
        await dead.close()
