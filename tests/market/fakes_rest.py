"""Local stand-ins for Binance's and Gate.io's public REST APIs on 127.0.0.1 (real HTTP,
served by uvicorn), with the documented response shapes, weights and limits:

- Binance: `GET /api/v3/exchangeInfo` (weight 20), `/api/v3/ticker/24hr?symbol=` (2),
  `/api/v3/klines` (2). Every answer carries `X-MBX-USED-WEIGHT-1M` (weight used in the
  current calendar minute); past `weight_limit` it answers 429 with `Retry-After` and
  `{"code": -1003, ...}`, and a client that keeps calling after `ban_after_429s` 429s is
  banned: 418 with `Retry-After` until the ban ends.
- Gate.io: `GET /api/v4/spot/currency_pairs`, `/spot/tickers?currency_pair=`,
  `/spot/candlesticks`; `limit_per_10s` requests per endpoint per 10 s, then 429
  `TOO_MANY_REQUESTS` with `X-Gate-RateLimit-*` headers.

Tests script failures (`fail_next`) and inspect `requests`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class _Served:
    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.fail_next: list[int] = []  # statuses to answer next (500, 502, ...), one per request

    def app(self) -> Starlette:
        raise NotImplementedError

    async def start(self) -> _Served:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve())
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake REST server did not start")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


@dataclass
class Market:
    base: str
    quote: str
    price: str = "1.2345"
    name: str = ""
    tradable: bool = True
    tick: str = "0.00010000"
    step: str = "0.01000000"


def kline_values(open_ms: int, step_ms: int) -> tuple[str, str, str, str, str]:
    """Deterministic OHLCV for a bar, so tests can compare what was stored."""
    n = open_ms // step_ms
    base = 100 + n % 50
    return (f"{base}.00", f"{base + 2}.00", f"{base - 1}.00", f"{base + 1}.00", f"{10 + n % 7}.5")


@dataclass
class FakeBinanceRest(_Served):
    markets: list[Market] = field(default_factory=list)
    weight_limit: int = 6000
    ban_after_429s: int = 2
    ban_seconds: int = 120
    weights: dict[int, int] = field(default_factory=dict)  # calendar minute -> weight used
    banned_until: float = 0.0
    limited_answers: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def used_weight(self) -> int:
        return self.weights.get(int(time.time() // 60), 0)

    def total_weight(self) -> int:
        return sum(self.weights.values())

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v3/exchangeInfo", self._wrap(20, self.exchange_info)),
                Route("/api/v3/ticker/24hr", self._wrap(2, self.ticker_24hr)),
                Route("/api/v3/klines", self._wrap(2, self.klines)),
            ]
        )

    def _wrap(self, weight: int, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            params = dict(request.query_params)
            self.requests.append((request.url.path, params))
            now = time.time()
            if now < self.banned_until:
                return _json(
                    {
                        "code": -1003,
                        "msg": f"Way too much request weight used; IP banned until {int(self.banned_until * 1000)}.",
                    },
                    418,
                    {"Retry-After": str(int(self.banned_until - now) + 1)},
                )
            minute = int(now // 60)
            used = self.weights.get(minute, 0) + weight
            self.weights[minute] = used
            headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
            if used > self.weight_limit:
                self.limited_answers += 1
                if self.limited_answers > self.ban_after_429s:
                    self.banned_until = now + self.ban_seconds
                    headers["Retry-After"] = str(self.ban_seconds)
                    return _json({"code": -1003, "msg": "Way too much request weight used; IP banned."}, 418, headers)
                headers["Retry-After"] = str(60 - int(now % 60))
                return _json(
                    {
                        "code": -1003,
                        "msg": f"Too much request weight used; current limit is {self.weight_limit} request weight "
                        "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                    },
                    429,
                    headers,
                )
            if self.fail_next:
                return _json(
                    {"code": -1001, "msg": "Internal error; unable to process your request."},
                    self.fail_next.pop(0),
                    headers,
                )
            response: Response = await handler(params)
            response.headers.update(headers)
            return response

        return endpoint

    async def exchange_info(self, params: dict[str, str]) -> Response:
        symbols = [
            {
                "symbol": m.base + m.quote,
                "status": "TRADING" if m.tradable else "BREAK",
                "baseAsset": m.base,
                "baseAssetPrecision": 8,
                "quoteAsset": m.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True,
                "cancelReplaceAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": m.tick,
                        "maxPrice": "1000000.00000000",
                        "tickSize": m.tick,
                    },
                    {"filterType": "LOT_SIZE", "minQty": m.step, "maxQty": "9000000.00000000", "stepSize": m.step},
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": "5.00000000",
                        "applyMinToMarket": True,
                        "maxNotional": "9000000.00000000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            }
            for m in self.markets
        ]
        return _json(
            {
                "timezone": "UTC",
                "serverTime": int(time.time() * 1000),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": self.weight_limit,
                    },
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    def _market(self, raw: str | None) -> Market | None:
        return next((m for m in self.markets if m.base + m.quote == raw and m.tradable), None)

    async def ticker_24hr(self, params: dict[str, str]) -> Response:
        market = self._market(params.get("symbol"))
        if market is None:
            return _json({"code": -1121, "msg": "Invalid symbol."}, 400)
        now_ms = int(time.time() * 1000)
        p = market.price
        return _json(
            {
                "symbol": market.base + market.quote,
                "priceChange": "0.01000000",
                "priceChangePercent": "0.812",
                "weightedAvgPrice": p,
                "prevClosePrice": p,
                "lastPrice": p,
                "lastQty": "3.00000000",
                "bidPrice": p,
                "bidQty": "10.00000000",
                "askPrice": p,
                "askQty": "12.00000000",
                "openPrice": p,
                "highPrice": p,
                "lowPrice": p,
                "volume": "123456.00000000",
                "quoteVolume": "152000.12000000",
                "openTime": now_ms - 86_400_000,
                "closeTime": now_ms,
                "firstId": 28385,
                "lastId": 28460,
                "count": 76,
            }
        )

    async def klines(self, params: dict[str, str]) -> Response:
        market = self._market(params.get("symbol"))
        if market is None:
            return _json({"code": -1121, "msg": "Invalid symbol."}, 400)
        steps = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
        step = steps.get(params.get("interval", ""))
        if step is None:
            return _json({"code": -1120, "msg": "Invalid interval."}, 400)
        limit = min(1000, int(params.get("limit", "500")))
        now_ms = int(time.time() * 1000)
        start = int(params.get("startTime", now_ms - step * limit)) // step * step
        if start < int(params.get("startTime", start)):
            start += step
        end = int(params.get("endTime", now_ms))
        rows = []
        t = start
        while t <= end and t <= now_ms and len(rows) < limit:
            o, h, lo, c, v = kline_values(t, step)
            rows.append([t, o, h, lo, c, v, t + step - 1, "1000.0", 42, "5.0", "500.0", "0"])
            t += step
        return _json(rows)


@dataclass
class FakeGateioRest(_Served):
    markets: list[Market] = field(default_factory=list)
    limit_per_10s: int = 200
    windows: dict[tuple[str, int], int] = field(default_factory=dict)
    limited_answers: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v4"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v4/spot/currency_pairs", self._wrap(self.currency_pairs)),
                Route("/api/v4/spot/tickers", self._wrap(self.tickers)),
                Route("/api/v4/spot/candlesticks", self._wrap(self.candlesticks)),
            ]
        )

    def _wrap(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            params = dict(request.query_params)
            path = request.url.path
            self.requests.append((path, params))
            now = time.time()
            window = int(now // 10)
            used = self.windows.get((path, window), 0) + 1
            self.windows[(path, window)] = used
            headers = {
                "X-Gate-RateLimit-Requests-Remain": str(max(0, self.limit_per_10s - used)),
                "X-Gate-RateLimit-Limit": str(self.limit_per_10s),
                "X-Gate-RateLimit-Reset-Timestamp": str((window + 1) * 10),
            }
            if used > self.limit_per_10s:
                self.limited_answers += 1
                return _json({"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"}, 429, headers)
            if self.fail_next:
                return _json(
                    {"label": "SERVER_ERROR", "message": "Internal server error"}, self.fail_next.pop(0), headers
                )
            response: Response = await handler(params)
            response.headers.update(headers)
            return response

        return endpoint

    async def currency_pairs(self, params: dict[str, str]) -> Response:
        return _json(
            [
                {
                    "id": f"{m.base}_{m.quote}",
                    "base": m.base,
                    "base_name": m.name or m.base,
                    "quote": m.quote,
                    "quote_name": "Tether" if m.quote == "USDT" else m.quote,
                    "fee": "0.2",
                    "min_base_amount": "0.001",
                    "min_quote_amount": "1.0",
                    "max_base_amount": "10000",
                    "max_quote_amount": "10000000",
                    "amount_precision": 3,
                    "precision": 4,
                    "trade_status": "tradable" if m.tradable else "untradable",
                    "sell_start": 1516378650,
                    "buy_start": 1516378650,
                    "delisting_time": 0,
                    "trade_url": f"https://www.gate.io/trade/{m.base}_{m.quote}",
                    "st_tag": False,
                }
                for m in self.markets
            ]
        )

    def _market(self, pair: str | None) -> Market | None:
        return next((m for m in self.markets if f"{m.base}_{m.quote}" == pair and m.tradable), None)

    async def tickers(self, params: dict[str, str]) -> Response:
        pair = params.get("currency_pair")
        market = self._market(pair)
        if market is None:
            return _json({"label": "INVALID_CURRENCY_PAIR", "message": f"Invalid currency pair: {pair}"}, 400)
        p = market.price
        return _json(
            [
                {
                    "currency_pair": pair,
                    "last": p,
                    "lowest_ask": p,
                    "lowest_size": "1.5",
                    "highest_bid": p,
                    "highest_size": "2.5",
                    "change_percentage": "0.81",
                    "change_utc0": "0.5",
                    "change_utc8": "0.6",
                    "base_volume": "120000.5",
                    "quote_volume": "150000.25",
                    "high_24h": p,
                    "low_24h": p,
                }
            ]
        )

    async def candlesticks(self, params: dict[str, str]) -> Response:
        pair = params.get("currency_pair")
        market = self._market(pair)
        if market is None:
            return _json({"label": "INVALID_CURRENCY_PAIR", "message": f"Invalid currency pair: {pair}"}, 400)
        steps = {"1m": 60, "1h": 3600, "1d": 86400}
        step = steps.get(params.get("interval", ""))
        if step is None:
            return _json({"label": "INVALID_PARAM_VALUE", "message": "invalid interval"}, 400)
        now = int(time.time())
        start = (int(params.get("from", now - step * 100)) + step - 1) // step * step
        end = min(now, int(params.get("to", now)))
        limit = min(1000, int(params.get("limit", "1000")))
        rows = []
        t = start
        while t <= end and len(rows) < limit:
            o, h, lo, c, v = kline_values(t * 1000, step * 1000)
            closed = t + step <= now
            rows.append([str(t), "1000.0", c, h, lo, o, v, "true" if closed else "false"])
            t += step
        return _json(rows)
