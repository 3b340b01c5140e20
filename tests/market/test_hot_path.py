"""The frame hot path (sage.market.hot_path) is invisible: on any sequence of frames it leaves
the same stored and published tickers, counts and candles as the general path (frame handler ->
parser -> pipeline.submit -> candles), and its candles are the Decimal definition's."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from sage.market.candles import CandleAggregator
from sage.market.feeds.base import Control
from sage.market.feeds.binance import BinanceFeed
from sage.market.feeds.gateio import GateioFeed
from sage.market.live import FeedFrameHandler
from sage.market.models import Ticker, ms_to_datetime
from sage.market.pipeline import MarketPipeline, ticker_key
from sage.observability.metrics import Metrics
from sage.store.cache import Cache
from sage.store.cache_setup import create_backend
from tests.market.fakes import binance_ticker, gate_ticker
from tests.market.test_lazy_ticker import ANY_TEXT, PLAIN, RELAXED, TICK_TEXT, WIDE_VOLUMES, reference_bars

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RX = T0 / 1000 + 3600  # every frame is received an hour after T0: event times up to T0 + 65 min pass
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
LATER = "SOL/USDT"  # subscribed at runtime (`track`) by some sequences


def frame(exchange: str, symbol: str, price: str, volume: str, at: int) -> str:
    """A ticker frame with this last price (also bid, ask, high and low) and base volume."""
    if exchange == "binance":
        native = symbol.replace("/", "")
        data = binance_ticker(native, price, at, h=price, l=price, v=volume)
        return orjson.dumps({"stream": native.lower() + "@ticker", "data": data}).decode()
    update = gate_ticker(symbol.replace("/", "_"), price, at, high_24h=price, low_24h=price, base_volume=volume)
    return orjson.dumps(update).decode()


def ack(exchange: str) -> str:
    if exchange == "binance":
        return '{"result":null,"id":1}'
    return '{"time":1,"channel":"spot.tickers","event":"subscribe","error":null,"result":{"status":"success"}}'


class Side:
    """One pipeline (with candles) fed by a handler on the hot path or, with the feed's typed
    decoder removed, on the general path only."""

    def __init__(self, exchange: str, *, hot: bool) -> None:
        self.cache = Cache(create_backend(None))
        self.metrics = Metrics()
        self.candles = CandleAggregator()
        self.pipeline = MarketPipeline(self.cache, self.metrics, candles=self.candles)
        self.feed: Any = (
            BinanceFeed(SYMBOLS, base_url="ws://x") if exchange == "binance" else GateioFeed(SYMBOLS, url="ws://x")
        )
        if not hot:
            self.feed.ticker_decoder = None
        self.handler = FeedFrameHandler(self.feed, self.pipeline, self.metrics)
        self.published: list[Any] = []

    async def flush(self) -> None:
        async with self.cache.backend.subscribe(self.pipeline.channel) as sub:
            await self.pipeline.flush()
            await sub.close()  # the in-process backend delivered during the flush; this ends the iteration
            async for _, payload in sub:
                self.published.append(orjson.loads(payload))

    async def state(self) -> tuple[object, ...]:
        keys = [ticker_key(self.cache, self.feed.exchange, s) for s in [*SYMBOLS, LATER]]
        stored = await self.cache.backend.get_many(keys)
        p, h = self.pipeline, self.handler
        return (
            stored,
            self.published,
            (p.accepted, p.published, p.coalesced, p.dropped, p.rejected_out_of_order, p.pending),
            (h.malformed, h.acks, h.errors),
            self.candles.drain(),
        )


PRICE = st.one_of(TICK_TEXT, st.sampled_from(["0", "0.000", "-1", "1e3", "+1", ".5", "5."]), ANY_TEXT)
EVENT = st.one_of(
    # a ticker of a subscribed (or later tracked) symbol; the time steps back now and then
    st.tuples(
        st.just("ticker"),
        st.sampled_from([*SYMBOLS, LATER]),
        TICK_TEXT,
        st.one_of(TICK_TEXT, PLAIN),
        st.integers(-2_000, 40_000),
    ),
    st.tuples(st.just("odd price"), st.sampled_from(SYMBOLS), PRICE, st.one_of(TICK_TEXT, PLAIN), st.just(1_000)),
    st.tuples(st.just("ahead"), st.sampled_from(SYMBOLS), TICK_TEXT, TICK_TEXT, st.just(0)),
    st.sampled_from([("ack",), ("garbage",), ("flush",), ("track",)]),
)


async def run_both(exchange: str, events: list[tuple[Any, ...]]) -> None:
    hot, general = Side(exchange, hot=True), Side(exchange, hot=False)
    at = T0
    for event in events:
        kind = event[0]
        if kind in ("ticker", "odd price", "ahead"):
            _, symbol, price, volume, step = event
            at = max(1, at + step)
            when = at + 3_600_000 if kind == "ahead" else at  # an hour ahead of the receive time
            text = frame(exchange, symbol, price, volume, when)
        elif kind == "ack":
            text = ack(exchange)
        elif kind == "garbage":
            text = '{"stream": "btcusdt@ticker", "data": {"e": "24hrTicker"'
        elif kind == "flush":
            await hot.flush()
            await general.flush()
            continue
        else:
            hot.feed.track([LATER])
            general.feed.track([LATER])
            continue
        assert hot.handler.handle(text, RX) == general.handler.handle(text, RX)
    await hot.flush()
    await general.flush()
    assert await hot.state() == await general.state()


@RELAXED
@given(exchange=st.sampled_from(["binance", "gateio"]), events=st.lists(EVENT, max_size=60))
@example(exchange="binance", events=[("ticker", "BTC/USDT", "1", "5", 0), ("ticker", "BTC/USDT", "1.0", "5.00", 1)])
@example(
    exchange="gateio", events=[("ticker", "SOL/USDT", "1", "1", 0), ("track",), ("ticker", "SOL/USDT", "2", "1", 1)]
)
def test_the_hot_path_leaves_what_the_general_path_leaves(exchange: str, events: list[tuple[Any, ...]]) -> None:
    asyncio.run(run_both(exchange, events))


@RELAXED
@given(
    exchange=st.sampled_from(["binance", "gateio"]),
    ticks=st.lists(st.tuples(TICK_TEXT, TICK_TEXT, st.integers(0, 180_000)), min_size=1, max_size=30),
)
# Equal values spelled with more or fewer zeros (one candle class, where the hot path compares
# texts): the high and low stay the first spelling seen, and no run of volume growth ends.
@example(exchange="binance", ticks=[("1", "1", 0), ("1.0", "1", 1), ("1.00", "1", 2)])
@example(exchange="gateio", ticks=[("2", "1", 0), ("1.00", "1", 1), ("1.0", "1", 2), ("1", "1", 3)])
@example(
    exchange="binance", ticks=[("2.319", "5.1", 0), ("2.3189", "5.10", 1), ("2.3190", "5.1", 2), ("2.31890", "5.2", 3)]
)
@example(exchange="gateio", ticks=[("1", "2.0", 0), ("1", "2.00", 1), ("1", "2", 2), ("1", "3", 3)])
@example(exchange="binance", ticks=WIDE_VOLUMES)
def test_hot_path_candles_are_the_decimal_definition(exchange: str, ticks: list[tuple[str, str, int]]) -> None:
    ticks.sort(key=lambda tick: tick[2])
    side = Side(exchange, hot=True)
    for n, (price, volume, at) in enumerate(ticks):
        side.handler.handle(frame(exchange, "BTC/USDT", price, volume, T0 + at + n), RX)
    got = side.candles.drain()
    # (times made strictly increasing: the pipeline's guard drops a repeated event time)
    want = reference_bars([(price, volume, at + n) for n, (price, volume, at) in enumerate(ticks)])
    assert len(got) == len(want)
    for candle, bar in zip(got, want, strict=True):
        minute, o, h, low, c, traded, count = cast(tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, int], bar)
        assert candle.start == ms_to_datetime(T0 + minute * 60_000)
        for value, expected in ((candle.open, o), (candle.high, h), (candle.low, low), (candle.close, c)):
            assert value.as_tuple() == expected.as_tuple()  # the digits and exponent too
        assert (candle.volume, candle.ticks) == (traded, count)


def test_after_a_symbols_first_frame_its_tickers_skip_the_parser() -> None:
    side = Side("binance", hot=True)
    parsed: list[object] = []
    parse = side.handler._parse

    def counting_parse(frame: str | bytes, received_at: datetime) -> Ticker | Control:
        parsed.append(frame)
        return parse(frame, received_at)

    side.handler._parse = counting_parse
    for n in range(5):
        side.handler.handle(frame("binance", "BTC/USDT", f"{100 + n}.5", "7", T0 + n), RX)
    assert len(parsed) == 1  # the first frame found the symbol's state through the general path
    assert side.pipeline.accepted == 5


def test_a_frame_with_a_lone_surrogate_is_malformed_on_both_paths() -> None:
    """Text that is not valid Unicode (websockets never hands one over; a replay file could)."""
    text = frame("binance", "BTC/USDT", "100.5", "7", T0).replace("100.5", "100.5" + chr(0xD800), 1)
    for hot in (True, False):
        side = Side("binance", hot=hot)
        side.handler.handle(frame("binance", "BTC/USDT", "100", "7", T0 - 1), RX)  # the symbol is known
        assert side.handler.handle(text, RX) is None
        assert (side.handler.malformed, side.pipeline.accepted) == (1, 1)
