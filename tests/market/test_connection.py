"""The shared connection runner against a local WebSocket server (no exchange logic)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from sage.market.connection import Backoff, ConnectionRunner, ConnectionSpec, Heartbeat, SendPacer
from sage.observability.metrics import Metrics
from tests.market.fakes import FakeBinance, eventually
from tests.market.helpers import background

SUBSCRIBE = orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@ticker"], "id": 1}).decode()


class Recorder:
    def __init__(self, reason_for: str | None = None) -> None:
        self.frames: list[str | bytes] = []
        self.reason_for = reason_for
        self.raise_on: str | None = None

    def __call__(self, frame: str | bytes, received_at: float) -> str | None:
        text = frame if isinstance(frame, str) else frame.decode()
        if self.raise_on and self.raise_on in text:
            raise RuntimeError("handler bug")
        self.frames.append(frame)
        if self.reason_for and self.reason_for in text:
            return "notice"
        return None

    def prices(self) -> list[str]:
        out = []
        for frame in self.frames:
            body = orjson.loads(frame)
            if isinstance(body, dict) and "data" in body:
                out.append(body["data"]["c"])
        return out


def make_runner(
    server: FakeBinance,
    handler: Recorder,
    metrics: Metrics,
    *,
    initial: float = 0.05,
    maximum: float = 0.4,
    reset_after: float = 60.0,
    watchdog: float = 30.0,
    heartbeat: Heartbeat | None = None,
    max_lifetime: float | None = None,
    rng: float = 0.5,
    url: str | None = None,
) -> ConnectionRunner:
    spec = ConnectionSpec(
        name="test-0",
        url=(url or server.url) + "/stream",
        on_open=lambda: [SUBSCRIBE],
        send_rate=50.0,
        heartbeat=heartbeat,
        max_lifetime=max_lifetime,
        labels={"exchange": "test"},
    )
    return ConnectionRunner(
        spec,
        handler,
        metrics=metrics,
        backoff=Backoff(initial, maximum, rng=lambda: rng),
        watchdog=watchdog,
        reset_after=reset_after,
    )


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_below_the_base():
    backoff = Backoff(0.5, 8.0, jitter=0.5, rng=lambda: 1.0)
    pairs = [backoff.next() for _ in range(7)]
    assert [base for base, _ in pairs] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert all(base * 0.5 <= actual <= base for base, actual in pairs)
    backoff.reset()
    assert backoff.next()[0] == 0.5


def test_backoff_keeps_going_forever_without_overflowing():
    backoff = Backoff(1.0, 60.0)
    for _ in range(10_000):
        base, actual = backoff.next()
    assert base == 60.0 and 0 < actual <= 60.0


async def test_send_pacer_never_lets_more_than_rate_messages_out_per_second():
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = SendPacer(4.0, clock=lambda: now[0], sleep=fake_sleep)
    sent_at = []
    for _ in range(12):
        await pacer.wait()
        sent_at.append(now[0])
    # any window of one second holds at most 4 sends
    assert all(sent_at[i + 4] - sent_at[i] >= 1.0 - 1e-9 for i in range(len(sent_at) - 4))


async def test_frames_reach_the_handler_after_the_subscription_is_sent(binance, metrics):
    handler = Recorder()
    runner = make_runner(binance, handler, metrics)
    async with background(runner.run()):
        await eventually(lambda: binance.subscribed_streams() == ["btcusdt@ticker"])
        await binance.push("BTCUSDT", "97000.10", 1)
        await eventually(lambda: handler.prices() == ["97000.10"])
    assert binance.paths[0] == "/stream"
    assert orjson.loads(handler.frames[0]) == {"result": None, "id": 1}


async def test_a_dropped_connection_is_replaced_within_the_backoff_bound(binance, metrics):
    handler = Recorder()
    runner = make_runner(binance, handler, metrics, initial=0.05, maximum=0.4)
    async with background(runner.run()):
        await eventually(lambda: binance.subscribed_streams())
        await binance.drop_all()
        await eventually(lambda: runner.stats.connects == 2 and binance.subscribed_streams())
        await binance.push("BTCUSDT", "97001.00", 2)
        await eventually(lambda: "97001.00" in handler.prices())
    assert runner.stats.delays, "a reconnect waited on the backoff"
    assert all(0 < actual <= base <= 0.4 for base, actual in runner.stats.delays)
    assert metrics.value("FeedReconnects", exchange="test") >= 1


async def test_backoff_grows_while_the_server_drops_us_then_resets_after_a_healthy_period(binance, metrics):
    handler = Recorder()
    runner = make_runner(binance, handler, metrics, initial=0.05, maximum=10.0, reset_after=0.3)
    binance.refuse_next = 3  # accept the handshake, then close at once: no healthy period
    async with background(runner.run()):
        await eventually(lambda: runner.stats.connects == 4 and binance.subscribed_streams())
        assert [base for base, _ in runner.stats.delays] == [0.05, 0.1, 0.2]
        # Healthy: frames flowing for longer than reset_after.
        price = 0

        async def trickle() -> None:
            nonlocal price
            while True:
                price += 1
                await binance.push("BTCUSDT", f"{97000 + price}", price)
                await asyncio.sleep(0.02)

        async with background(trickle()):
            await eventually(lambda: runner.stats.backoff_resets == 1)
        await binance.drop_all()
        await eventually(lambda: len(runner.stats.delays) == 4)
    assert runner.stats.delays[-1][0] == 0.05, "the first retry after a healthy connection starts over"


async def test_a_connection_that_only_lives_briefly_does_not_reset_the_backoff(binance, metrics):
    runner = make_runner(binance, Recorder(), metrics, initial=0.05, maximum=10.0, reset_after=30.0)
    async with background(runner.run()):
        for expected in (1, 2, 3):
            await eventually(lambda expected=expected: runner.stats.connects == expected and binance.live)
            await binance.push("BTCUSDT", "1", expected)  # it even delivered a frame
            await binance.drop_all()
        await eventually(lambda: len(runner.stats.delays) == 3)
    assert [base for base, _ in runner.stats.delays] == [0.05, 0.1, 0.2]


async def test_the_watchdog_replaces_a_connection_that_went_silent(binance, metrics):
    binance.silent = True  # no ack, no data, no heartbeat answers
    runner = make_runner(binance, Recorder(), metrics, watchdog=0.3)
    async with background(runner.run()):
        await eventually(lambda: runner.stats.connects >= 2)
    assert runner.stats.reasons[0].startswith("watchdog")


async def test_a_quiet_but_healthy_connection_is_kept_by_answered_heartbeats(binance, metrics):
    list_request = orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 99}).decode()
    heartbeat = Heartbeat(lambda: list_request, 0.2, only_when_quiet=True)
    runner = make_runner(binance, Recorder(), metrics, watchdog=2.0, heartbeat=heartbeat)
    async with background(runner.run()):
        # No market data at all, for several watchdog periods' worth of heartbeats.
        await eventually(lambda: binance.list_requests >= 30, timeout=60)
        assert runner.stats.connects == 1
        assert runner.stats.disconnects == 0


async def test_heartbeats_are_not_sent_while_data_flows(binance, metrics):
    list_request = orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 99}).decode()
    runner = make_runner(binance, Recorder(), metrics, heartbeat=Heartbeat(lambda: list_request, 2.0, True))
    async with background(runner.run()):
        await eventually(lambda: binance.subscribed_streams())
        for n in range(100):
            await binance.push("BTCUSDT", "1", n + 1)
            await asyncio.sleep(0.03)
    assert binance.list_requests == 0


async def test_server_pings_are_answered(metrics):
    server = FakeBinance(ping_interval=None)
    await server.start()
    try:
        runner = make_runner(server, Recorder(), metrics)
        async with background(runner.run()):
            await eventually(lambda: server.subscribed_streams())
            latencies = await server.ping_clients()
        assert len(latencies) == 1
    finally:
        await server.stop()


async def test_the_handler_can_ask_for_a_new_connection(binance, metrics):
    handler = Recorder(reason_for="serverShutdown")
    runner = make_runner(binance, handler, metrics)
    async with background(runner.run()):
        await eventually(lambda: binance.subscribed_streams())
        await binance.server_shutdown()
        await eventually(lambda: runner.stats.connects == 2)
    assert runner.stats.reasons[0] == "server notice: notice"


async def test_a_server_initiated_close_is_followed_by_a_reconnect(binance, metrics):
    runner = make_runner(binance, Recorder(), metrics)
    async with background(runner.run()):
        await eventually(lambda: binance.subscribed_streams())
        await binance.close_all(1001, "going away")
        await eventually(lambda: runner.stats.connects == 2 and binance.subscribed_streams())
    assert "1001" in runner.stats.reasons[0]


async def test_a_connection_is_replaced_before_its_maximum_lifetime(binance, metrics):
    runner = make_runner(binance, Recorder(), metrics, max_lifetime=0.2)
    async with background(runner.run()):
        await eventually(lambda: runner.stats.connects >= 3)
    assert "maximum lifetime" in runner.stats.reasons[0]


async def test_a_failing_handler_does_not_stop_the_connection(binance, metrics):
    handler = Recorder()
    handler.raise_on = "66666"
    runner = make_runner(binance, handler, metrics)
    async with background(runner.run()):
        await eventually(lambda: binance.subscribed_streams())
        await binance.push("BTCUSDT", "66666", 1)
        await binance.push("BTCUSDT", "77777", 2)
        await eventually(lambda: handler.prices() == ["77777"])
    assert runner.stats.handler_errors == 1
    assert runner.stats.connects == 1


async def test_an_unreachable_server_is_retried_forever_with_capped_delays(binance, metrics):
    url = binance.url
    await binance.stop()  # nothing listens on the port any more
    runner = make_runner(binance, Recorder(), metrics, initial=0.01, maximum=0.05, url=url)
    async with background(runner.run()):
        await eventually(lambda: runner.stats.disconnects >= 8)
    assert all(base <= 0.05 for base, _ in runner.stats.delays)
    assert runner.stats.connects == 0


@pytest.mark.parametrize("wrapped", [False, True])
async def test_binance_shutdown_notice_in_either_shape_triggers_reconnect(binance, metrics, wrapped):
    from sage.market.feeds.binance import BinanceFeed
    from sage.market.live import ExchangeFeedRunner, RunnerOptions
    from sage.market.pipeline import MarketPipeline
    from sage.store.cache import Cache
    from sage.store.cache_memory import MemoryBackend

    pipeline = MarketPipeline(Cache(MemoryBackend()), metrics)
    feed = BinanceFeed(["BTC/USDT"], base_url=binance.url)
    runner = ExchangeFeedRunner(feed, pipeline, metrics, RunnerOptions(backoff_initial=0.01, backoff_max=0.05))
    async with background(runner.run()):
        await eventually(lambda: binance.subscribed_streams())
        await binance.server_shutdown(wrapped=wrapped)
        await eventually(lambda: runner.runners[0].stats.connects == 2 and binance.subscribed_streams())
    assert "serverShutdown" in runner.runners[0].stats.reasons[0]
