"""SAGE_MARKET_SOURCE=replay: the shipped session through the live parsers, looping."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from sage.market.feeds.base import Control
from sage.market.feeds.binance import BinanceFeed
from sage.market.feeds.gateio import GateioFeed
from sage.market.ingest import IngestOptions, Ingestor
from sage.market.models import Ticker
from sage.market.pipeline import MarketPipeline
from sage.market.replay import DEFAULT_FEAR_GREED, DEFAULT_SESSION, ReplaySource, load_session
from sage.settings import DEFAULT_SYMBOLS
from sage.store.cache import Cache
from sage.store.cache_memory import MemoryBackend
from tests.market.fakes import binance_ticker, eventually
from tests.market.helpers import background

RX = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_shipped_session_is_small_and_in_the_exchanges_own_formats():
    assert DEFAULT_SESSION.stat().st_size < 2_000_000
    frames = load_session(DEFAULT_SESSION)
    feeds = {"binance": BinanceFeed(DEFAULT_SYMBOLS, base_url="x"), "gateio": GateioFeed(DEFAULT_SYMBOLS, url="x")}
    per_key: Counter[tuple[str, str]] = Counter()
    prices: dict[tuple[str, str], set[Decimal]] = {}
    for _, exchange, frame in frames:
        parsed = feeds[exchange].parse(frame, RX)
        if isinstance(parsed, Ticker):
            per_key[parsed.key] += 1
            prices.setdefault(parsed.key, set()).add(parsed.last)
        else:
            assert isinstance(parsed, Control)
    assert set(per_key) == {(ex, s) for ex in feeds for s in DEFAULT_SYMBOLS}
    assert min(per_key.values()) >= 600, "at least ten minutes of one-second updates per symbol"
    assert all(len(p) > 50 for p in prices.values()), "prices move"
    assert frames[-1][0] - frames[0][0] >= 600_000


def test_the_session_ends_near_where_it_begins_so_the_loop_has_no_jump():
    first: dict[str, Decimal] = {}
    last: dict[str, Decimal] = {}
    with gzip.open(DEFAULT_SESSION) as fh:
        for line in fh:
            _, exchange, frame = orjson.loads(line)
            data = orjson.loads(frame).get("data")
            if exchange == "binance" and data:
                first.setdefault(data["s"], Decimal(data["c"]))
                last[data["s"]] = Decimal(data["c"])
    for symbol, start in first.items():
        assert abs(last[symbol] / start - 1) < Decimal("0.003"), symbol


async def test_replay_loops_and_restamps_updates_so_none_is_dropped_as_old(tmp_path, metrics):
    session = tmp_path / "tiny.jsonl"
    lines = [
        [0, "binance", orjson.dumps({"stream": "btcusdt@ticker", "data": binance_ticker("BTCUSDT", "100.0", 5)})],
        [10, "binance", orjson.dumps({"stream": "btcusdt@ticker", "data": binance_ticker("BTCUSDT", "101.0", 6)})],
        [20, "kraken", "{}"],
    ]
    session.write_bytes(
        b"\n".join(orjson.dumps([o, x, f.decode() if isinstance(f, bytes) else f]) for o, x, f in lines)
    )
    pipeline = MarketPipeline(Cache(MemoryBackend()), metrics)
    replay = ReplaySource(
        {"binance": BinanceFeed(["BTC/USDT"], base_url="x")}, pipeline, metrics, path=session, speed=10
    )
    async with background(replay.run()):
        await eventually(lambda: replay.loops >= 3)
    assert pipeline.accepted >= 6
    assert pipeline.rejected_out_of_order == 0
    (seen,) = pipeline.last_seen().values()
    assert (datetime.now(UTC) - seen).total_seconds() < 60, "replayed updates carry the replay time"


async def test_replay_mode_serves_moving_prices_and_fear_greed_with_no_network(
    make_settings, database_url, valkey_url, cache, db, metrics, app_client
):
    settings = make_settings(
        database_url=database_url, valkey_url=valkey_url, market_source="replay", replay_speed=20.0
    )
    ingestor = Ingestor(settings, cache, db, metrics, options=IngestOptions(stale_check_seconds=0.2))
    ingestor.start()
    try:

        async def all_symbols() -> list[dict] | None:
            body = (await app_client.get("/api/v1/market/tickers")).json()
            ok = len(body["tickers"]) == len(DEFAULT_SYMBOLS) and all(
                set(t["exchanges"]) == {"binance", "gateio"} for t in body["tickers"]
            )
            return body["tickers"] if ok else None

        first = await eventually(all_symbols, timeout=30)
        assert not any(t["stale"] or t["diverged"] for t in first)
        before = {t["symbol"]: t["price"] for t in first}

        async def moved() -> bool:
            tickers = await all_symbols()
            return bool(tickers) and sum(t["price"] != before[t["symbol"]] for t in tickers) >= 3

        await eventually(moved, timeout=30)
        fng = (await app_client.get("/api/v1/market/fear-greed")).json()
        assert fng["current"]["as_of"].startswith(datetime.now(UTC).date().isoformat())
        assert len(fng["history"]) == 30
        assert ingestor.active_feeds == {"replay"}
    finally:
        await ingestor.aclose()


async def test_the_embedded_default_ingests_in_process(make_settings, database_url):
    """No VALKEY_URL: the in-process cache, and `sage serve` replays the session itself."""
    import httpx
    from asgi_lifespan import LifespanManager

    from sage.app import create_app

    settings = make_settings(database_url=database_url, market_source="replay", replay_speed=20.0)
    assert settings.ingest_in_process
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:

            async def served() -> bool:
                body = (await client.get("/api/v1/market/tickers")).json()
                return body["source"] == "replay" and len(body["tickers"]) == len(DEFAULT_SYMBOLS)

            await eventually(served, timeout=30)
    assert DEFAULT_FEAR_GREED.exists()
