"""The exchange parsers: pure functions from documented frames to Ticker or a control signal."""

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sage.market.feeds.base import MAX_EVENT_MS, ControlKind, MalformedMessage, UnexpectedMessage
from sage.market.feeds.binance import BinanceFeed, combined_base_url
from sage.market.feeds.fear_greed import parse_fng
from sage.market.feeds.gateio import GateioFeed
from sage.market.models import Ticker, ticker_from_json, ticker_to_json
from tests.market.fakes import binance_ticker, fng_body, gate_ticker

RX = datetime(2026, 1, 1, tzinfo=UTC)
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
DECIMAL_TEXT = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e12"), places=8).map(str)


def binance() -> BinanceFeed:
    return BinanceFeed(SYMBOLS, base_url="wss://stream.binance.com:9443")


def gate() -> GateioFeed:
    return GateioFeed(SYMBOLS, url="wss://api.gateio.ws/ws/v4/", wall_clock=lambda: 1_700_000_000.0)


def combined(payload: dict) -> bytes:
    return orjson.dumps({"stream": payload["s"].lower() + "@ticker", "data": payload})


# --- Binance -----------------------------------------------------------------------------------


def test_binance_combined_ticker_becomes_a_normalized_ticker():
    t = binance().parse(combined(binance_ticker("BTCUSDT", "97012.12000000", 1_767_225_600_123)), RX)
    assert isinstance(t, Ticker)
    assert (t.exchange, t.symbol) == ("binance", "BTC/USDT")
    assert t.last == Decimal("97012.12000000")
    assert t.change_pct == Decimal("0.125")
    assert (t.high, t.low) == (Decimal("98000.00000000"), Decimal("95000.00000000"))
    assert (t.base_volume, t.quote_volume) == (Decimal("18500.12345000"), Decimal("1790000000.12000000"))
    assert t.event_time == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert t.received_at == RX


def test_binance_raw_stream_payload_without_wrapper_is_accepted():
    t = binance().parse(orjson.dumps(binance_ticker("ETHUSDT", "3400.5", 1_700_000_000_000)), RX)
    assert isinstance(t, Ticker) and t.symbol == "ETH/USDT"


def test_binance_subscription_ack_and_error_are_control_messages():
    feed = binance()
    assert feed.parse(b'{"result":null,"id":7}', RX).kind is ControlKind.ACK
    error = feed.parse(b'{"code":2,"msg":"Invalid request: unknown variant","id":7}', RX)
    assert error.kind is ControlKind.ERROR and "unknown variant" in error.detail
    assert feed.parse(b'{"result":["btcusdt@ticker"],"id":8}', RX).kind is ControlKind.RESPONSE


@pytest.mark.parametrize(
    "frame",
    [b'{"e":"serverShutdown","E":1770123456789}', b'{"event":{"e":"serverShutdown","E":1770123456789}}'],
)
def test_binance_server_shutdown_asks_for_a_new_connection(frame):
    assert binance().parse(frame, RX).kind is ControlKind.RECONNECT


@pytest.mark.parametrize(
    "frame",
    [
        b"not json",
        b"[1,2,3]",
        b'{"stream":"btcusdt@ticker","data":5}',
        combined(binance_ticker("BTCUSDT", "abc", 1)),
        combined(binance_ticker("BTCUSDT", "NaN", 1)),
        combined(binance_ticker("BTCUSDT", "-5", 1)),
        combined(binance_ticker("BTCUSDT", 97000.5, 1)),  # a float would lose exactness
        combined(binance_ticker("BTCUSDT", "1", 1, E="soon")),
        combined(binance_ticker("BTCUSDT", "1", 1, E=MAX_EVENT_MS + 1)),  # past year 9999 (microseconds?)
        combined(binance_ticker("BTCUSDT", "1", 1, E=1_764_000_000_000_000)),  # 2025 in microseconds
        orjson.dumps({"stream": "x", "data": {k: v for k, v in binance_ticker("BTCUSDT", "1", 1).items() if k != "b"}}),
    ],
)
def test_binance_malformed_frames_are_rejected(frame):
    with pytest.raises(MalformedMessage):
        binance().parse(frame, RX)


def test_the_last_event_time_a_datetime_holds_is_a_ticker_whose_time_reads():
    ticker = binance().parse(combined(binance_ticker("BTCUSDT", "1", 1, E=MAX_EVENT_MS)), RX)
    assert isinstance(ticker, Ticker) and ticker.event_time.year == 9999


def test_binance_ticker_for_an_unsubscribed_symbol_is_unexpected():
    with pytest.raises(UnexpectedMessage):
        binance().parse(combined(binance_ticker("XRPUSDT", "2.3", 1)), RX)


def test_binance_plans_subscribe_each_symbol_ticker_on_a_combined_stream():
    (plan,) = binance().plans()
    assert plan.url == "wss://stream.binance.com:9443/stream"
    (message,) = plan.subscribe()
    body = orjson.loads(message)
    assert body["method"] == "SUBSCRIBE" and body["params"] == ["btcusdt@ticker", "ethusdt@ticker"]
    assert isinstance(body["id"], int)
    assert plan.send_rate < 5  # Binance: at most 5 inbound messages per second
    assert plan.max_lifetime is not None and plan.max_lifetime < 24 * 3600


def test_binance_shards_beyond_the_streams_per_connection_limit():
    symbols = [f"C{i}/USDT" for i in range(250)]
    feed = BinanceFeed(symbols, base_url="wss://x", streams_per_connection=100)
    plans = feed.plans()
    assert [len(p.symbols) for p in plans] == [100, 100, 50]
    assert sum(len(orjson.loads(m)["params"]) for p in plans for m in p.subscribe()) == 250


def test_binance_never_puts_more_than_1024_streams_on_one_connection():
    feed = BinanceFeed([f"C{i}/USDT" for i in range(1500)], base_url="wss://x", streams_per_connection=5000)
    assert max(len(p.symbols) for p in feed.plans()) == 1024


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("wss://stream.binance.com:9443", "wss://stream.binance.com:9443/stream"),
        ("wss://stream.testnet.binance.vision/ws", "wss://stream.testnet.binance.vision/stream"),
        ("ws://127.0.0.1:8080/stream/", "ws://127.0.0.1:8080/stream"),
    ],
)
def test_binance_base_url_may_already_name_a_stream_path(url, expected):
    assert combined_base_url(url) == expected


@given(price=DECIMAL_TEXT, volume=DECIMAL_TEXT, event_ms=st.integers(1, 4_000_000_000_000))
@example(price="1E-8", volume="1E-8", event_ms=1001)  # 1.001 s is 1000.999... ms as a float
def test_binance_prices_survive_exactly(price, volume, event_ms):
    t = binance().parse(combined(binance_ticker("BTCUSDT", price, event_ms, v=volume)), RX)
    assert t.last == Decimal(price) and t.base_volume == Decimal(volume)
    assert ticker_from_json(ticker_to_json(t)) == t  # the wire form loses nothing


# --- Gate.io ---------------------------------------------------------------------------------------


def test_gate_ticker_update_becomes_a_normalized_ticker():
    t = gate().parse(
        orjson.dumps(
            gate_ticker("BTC_USDT", "15743.4", 1_669_107_766_406, lowest_ask="15744.4", highest_bid="15743.5")
        ),
        RX,
    )
    assert isinstance(t, Ticker)
    assert (t.exchange, t.symbol) == ("gateio", "BTC/USDT")
    assert (t.last, t.bid, t.ask) == (Decimal("15743.4"), Decimal("15743.5"), Decimal("15744.4"))
    assert t.change_pct == Decimal("-1.8254")
    assert t.event_time == datetime.fromtimestamp(1_669_107_766.406, UTC)


def test_gate_update_without_time_ms_uses_time_in_seconds():
    frame = gate_ticker("ETH_USDT", "3400", 1_669_107_766_000)
    del frame["time_ms"]
    t = gate().parse(orjson.dumps(frame), RX)
    assert t.event_time == datetime.fromtimestamp(1_669_107_766, UTC)


def test_gate_ack_error_pong_and_upgrade_are_control_messages():
    feed = gate()
    ack = {
        "time": 1,
        "time_ms": 1000,
        "channel": "spot.tickers",
        "event": "subscribe",
        "error": None,
        "result": {"status": "success"},
    }
    assert feed.parse(orjson.dumps(ack), RX).kind is ControlKind.ACK
    rejected = {**ack, "error": {"code": 2, "message": "unknown currency pair: FOO_USDT"}, "result": None}
    control = feed.parse(orjson.dumps(rejected), RX)
    assert control.kind is ControlKind.ERROR and "FOO_USDT" in control.detail
    pong = {"time": 1, "channel": "spot.pong", "event": "", "error": None, "result": None}
    assert feed.parse(orjson.dumps(pong), RX).kind is ControlKind.PONG
    assert feed.parse(b'{"type":"upgrade"}', RX).kind is ControlKind.RECONNECT


def test_gate_subscription_and_ping_follow_the_documented_shape():
    feed = gate()
    (plan,) = feed.plans()
    messages = [orjson.loads(m) for m in plan.subscribe()]
    assert [m["payload"] for m in messages] == [["BTC_USDT"], ["ETH_USDT"]]  # one pair each: errors stay isolated
    for m in messages:
        assert m == {
            "time": 1_700_000_000,
            "id": m["id"],
            "channel": "spot.tickers",
            "event": "subscribe",
            "payload": m["payload"],
        }
    assert len({m["id"] for m in messages}) == 2
    assert plan.heartbeat is not None and plan.heartbeat.interval == 15.0
    assert orjson.loads(plan.heartbeat.message()) == {"time": 1_700_000_000, "channel": "spot.ping"}


@pytest.mark.parametrize(
    "frame",
    [
        b"{",
        b'"text"',
        b'{"channel":"spot.tickers","event":"update","result":[]}',
        orjson.dumps(gate_ticker("BTC_USDT", "", 1_000)),
        orjson.dumps(gate_ticker("BTC_USDT", "1", 1_000, high_24h=None)),
        orjson.dumps({k: v for k, v in gate_ticker("BTC_USDT", "1", 1_000).items() if k not in ("time", "time_ms")}),
        b'{"channel":"spot.trades","event":"update","result":{}}',
        orjson.dumps(gate_ticker("BTC_USDT", "1", MAX_EVENT_MS + 1)),
    ],
)
def test_gate_malformed_frames_are_rejected(frame):
    with pytest.raises(MalformedMessage):
        gate().parse(frame, RX)


@given(price=DECIMAL_TEXT, time_ms=st.integers(1, 4_000_000_000_000))
def test_gate_prices_survive_exactly(price, time_ms):
    t = gate().parse(orjson.dumps(gate_ticker("ETH_USDT", price, time_ms)), RX)
    assert t.last == Decimal(price)


# --- Alternative.me ------------------------------------------------------------------------------


def test_fear_greed_values_arrive_as_strings_newest_first():
    readings = parse_fng(fng_body([(40, "Fear", 1_551_157_200), (47, "Neutral", 1_551_070_800)]))
    assert [(r.value, r.classification) for r in readings] == [(40, "Fear"), (47, "Neutral")]
    assert readings[0].as_of == datetime.fromtimestamp(1_551_157_200, UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>busy</html>",
        b'{"data": []}',
        b'{"data": [{"value": "x", "value_classification": "Fear", "timestamp": "1"}]}',
        b'{"data": [{"value": "140", "value_classification": "Fear", "timestamp": "1"}]}',
        b'{"data": [{"value": "40", "timestamp": "1"}]}',
        b'{"data": [], "metadata": {"error": "rate limited"}}',
    ],
)
def test_fear_greed_bad_answers_are_rejected(body):
    with pytest.raises(MalformedMessage):
        parse_fng(body)
