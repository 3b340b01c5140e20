"""Alternative.me Crypto Fear & Greed Index: `GET /fng/?limit=N`.

The answer is `{"name", "data": [{"value": "40", "value_classification": "Fear",
"timestamp": "1551157200", "time_until_update": "..."}], "metadata": {"error": null}}`:
every value is a string, newest first, updated once a day. Alternative.me allows 60
requests per minute; the poller never asks more than once a second and normally once
every SAGE_FNG_POLL_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from sage.market.feeds.base import MalformedMessage
from sage.market.models import FearGreedReading
from sage.observability.metrics import Metrics

log = logging.getLogger(__name__)

EXCHANGE = "fear_greed"  # the metrics dimension for this feed
MIN_REQUEST_INTERVAL = 1.0  # 60 requests per minute at most
HISTORY_LIMIT = 30


def parse_fng(body: bytes | str) -> list[FearGreedReading]:
    """Readings newest first; raises MalformedMessage for anything else."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage("invalid JSON") from exc
    if type(doc) is not dict:
        raise MalformedMessage("not a JSON object")
    metadata = doc.get("metadata")
    if type(metadata) is dict and metadata.get("error"):
        raise MalformedMessage(f"the API reported an error: {str(metadata['error'])[:200]}")
    data = doc.get("data")
    if type(data) is not list or not data:
        raise MalformedMessage("no data")
    readings = [_reading(item) for item in data]
    readings.sort(key=lambda r: r.as_of, reverse=True)
    return readings


def _reading(item: Any) -> FearGreedReading:
    if type(item) is not dict:
        raise MalformedMessage("data entry is not an object")
    try:
        value = int(item["value"])
        stamp = int(item["timestamp"])
        classification = str(item["value_classification"]).strip()
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"bad data entry ({type(exc).__name__})") from None
    if not 0 <= value <= 100:
        raise MalformedMessage(f"value {value} is outside 0..100")
    if stamp <= 0 or not classification:
        raise MalformedMessage("bad timestamp or classification")
    return FearGreedReading(value=value, classification=classification[:32], as_of=datetime.fromtimestamp(stamp, UTC))


class FearGreedPoller:
    """Polls the index and hands every good answer to `sink`. Errors (5xx, timeouts,
    invalid JSON) are logged and counted, then retried with a capped backoff; the
    interval between requests never drops below one second."""

    def __init__(
        self,
        url: str,
        sink: Callable[[list[FearGreedReading]], Awaitable[None]],
        metrics: Metrics,
        *,
        interval: float = 300.0,
        timeout: float = 10.0,
        history_limit: int = HISTORY_LIMIT,
        retry_initial: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.sink = sink
        self.metrics = metrics
        self.interval = max(MIN_REQUEST_INTERVAL, interval)
        self.timeout = timeout
        self.history_limit = history_limit
        self.retry_initial = max(MIN_REQUEST_INTERVAL, retry_initial)
        self._client = client
        self._owns_client = client is None
        self.successes = 0
        self.failures = 0
        self.requests = 0
        self._seeded = False

    async def fetch(self, limit: int) -> list[FearGreedReading]:
        if self._client is None:
            self._client = httpx.AsyncClient(headers={"Accept": "application/json"}, follow_redirects=True)
        self.requests += 1
        response = await self._client.get(self.url, params={"limit": str(limit)}, timeout=self.timeout)
        if response.status_code != 200:
            raise httpx.HTTPStatusError(f"status {response.status_code}", request=response.request, response=response)
        return parse_fng(response.content)

    async def poll_once(self) -> bool:
        """One request; True when it produced readings."""
        limit = 1 if self._seeded else self.history_limit
        try:
            readings = await self.fetch(limit)
        except MalformedMessage as exc:
            self.failures += 1
            self.metrics.incr("FeedMalformed", exchange=EXCHANGE)
            log.warning("fear & greed answer unusable", extra={"feed": EXCHANGE, "error": str(exc)})
            return False
        except (httpx.HTTPError, OSError) as exc:
            self.failures += 1
            self.metrics.incr("FeedErrors", exchange=EXCHANGE)
            log.warning("fear & greed request failed", extra={"feed": EXCHANGE, "error": type(exc).__name__})
            return False
        self.successes += 1
        self.metrics.incr("FeedMessages", exchange=EXCHANGE)
        await self.sink(readings)
        self._seeded = True
        return True

    async def run(self) -> None:
        retry = self.retry_initial
        try:
            while True:
                if await self.poll_once():
                    retry = self.retry_initial
                    await asyncio.sleep(self.interval)
                else:
                    jittered = min(self.interval, retry) * (0.5 + random.random() / 2)
                    await asyncio.sleep(max(MIN_REQUEST_INTERVAL, jittered))
                    retry = min(self.interval, retry * 2)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None
