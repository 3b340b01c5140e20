"""The Fear & Greed poller against a local HTTP server: good answers, 5xx, timeouts, bad JSON."""

from __future__ import annotations

import time

from sage.market.feeds.fear_greed import FearGreedPoller
from sage.market.history import FearGreedSink
from sage.market.service import MarketService
from tests.market.fakes import Scripted, eventually, fng_body
from tests.market.helpers import background

DAY = 86_400
TODAY = int(time.time()) // DAY * DAY


class Sink:
    def __init__(self) -> None:
        self.batches: list[list] = []

    async def __call__(self, readings: list) -> None:
        self.batches.append(readings)


def good(days: int = 3) -> Scripted:
    return Scripted(body=fng_body([(40 + n, "Fear", TODAY - n * DAY) for n in range(days)]))


async def test_the_first_poll_fetches_history_and_later_polls_only_the_latest(fng_server, metrics):
    fng_server.answer(good(30), good(1))
    sink = Sink()
    poller = FearGreedPoller(fng_server.url, sink, metrics, interval=1.0)
    async with background(poller.run()):
        await eventually(lambda: len(sink.batches) == 2)
    assert fng_server.requests[:2] == ["/fng/?limit=30", "/fng/?limit=1"]
    assert [r.value for r in sink.batches[0][:2]] == [40, 41]


async def test_a_server_error_is_counted_and_retried(fng_server, metrics):
    fng_server.answer(Scripted(status=503, body=b"busy"), good())
    sink = Sink()
    poller = FearGreedPoller(fng_server.url, sink, metrics)
    assert await poller.poll_once() is False
    assert await poller.poll_once() is True
    await poller.aclose()
    assert metrics.value("FeedErrors", exchange="fear_greed") == 1
    assert len(sink.batches) == 1


async def test_a_timeout_is_counted_and_does_not_hang_the_poller(fng_server, metrics):
    fng_server.answer(Scripted(hang=True), good())
    poller = FearGreedPoller(fng_server.url, Sink(), metrics, timeout=0.3)
    assert await poller.poll_once() is False
    assert await poller.poll_once() is True
    await poller.aclose()
    assert metrics.value("FeedErrors", exchange="fear_greed") == 1


async def test_invalid_json_is_counted_as_malformed(fng_server, metrics):
    fng_server.answer(Scripted(body=b"<html>maintenance</html>"), Scripted(body=b'{"data": "nope"}'), good())
    poller = FearGreedPoller(fng_server.url, Sink(), metrics)
    assert [await poller.poll_once() for _ in range(3)] == [False, False, True]
    await poller.aclose()
    assert metrics.value("FeedMalformed", exchange="fear_greed") == 2


async def test_the_poller_never_asks_more_than_once_a_second(fng_server, metrics):
    poller = FearGreedPoller(fng_server.url, Sink(), metrics, interval=0.01, retry_initial=0.01)
    assert poller.interval >= 1.0 and poller.retry_initial >= 1.0


async def test_readings_land_in_the_cache_and_the_history_table(fng_server, cache, db, metrics, make_settings):
    fng_server.answer(good(5))
    sink = FearGreedSink(cache, db)
    poller = FearGreedPoller(fng_server.url, sink, metrics)
    assert await poller.poll_once()
    await poller.aclose()
    service = MarketService(make_settings(), cache, db, metrics)
    current = await service.fear_greed()
    assert current is not None and current.value == 40
    ttl = await cache.backend.ttl(cache.key("market", "fear_greed"))
    assert ttl is not None and 1790 < ttl <= 1800
    history = await service.fear_greed_history(10)
    assert [r.value for r in history] == [40, 41, 42, 43, 44]
    # When the cached value expires, the newest stored reading still answers.
    await cache.delete(cache.key("market", "fear_greed"))
    assert (await service.fear_greed()).value == 40
