"""The feeds' typed fast path (msgspec decoding straight into the exchange's strings) and the
plain-decimal shape set are invisible: every frame gets exactly what the general parser
(`orjson.loads` into dicts, then the field checks) gives it — the same Ticker with the same
strings, the same control message, or the same rejection with the same reason."""

import itertools
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sage.market.feeds import base, binance, gateio
from sage.market.feeds.base import MalformedMessage, build_ticker
from sage.market.feeds.binance import BinanceFeed
from sage.market.feeds.gateio import GateioFeed
from sage.market.models import Ticker, ticker_wire
from tests.market.fakes import binance_ticker, gate_ticker
from tests.market.test_lazy_ticker import ANY_TEXT, PLAIN, POSITIVE_PLAIN, RELAXED, assert_same, eager

RX = datetime(2026, 1, 1, tzinfo=UTC)
THOROUGH = settings(RELAXED, max_examples=400)
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
MISSING = object()
# What a field may hold in a frame: any text, or a JSON value of another type, or nothing.
VALUE = st.one_of(
    ANY_TEXT,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 9), max_size=1),
    st.just(MISSING),
)
TIME = st.one_of(st.integers(-5, 4_000_000_000_000), st.integers(2**63, 2**64 - 1), VALUE)
# Eight numbers: well-formed ones half the time, so the rest of the frame decides.
NUMBERS = st.one_of(st.tuples(POSITIVE_PLAIN, *[PLAIN] * 7), st.tuples(*[st.one_of(PLAIN, VALUE)] * 8))
BINANCE_NUMBERS = binance.TICKER_FIELDS
GATE_NUMBERS = gateio.TICKER_FIELDS


def fill(payload: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    for name, value in values.items():
        if value is MISSING:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


@st.composite
def binance_frames(draw: st.DrawFn) -> bytes:
    payload = binance_ticker(draw(st.sampled_from(["BTCUSDT", "ETHUSDT", "XRPUSDT"])), "1", 1)
    fill(payload, dict(zip(BINANCE_NUMBERS, draw(NUMBERS), strict=True)))
    fill(payload, {"E": draw(TIME), "e": draw(st.sampled_from(["24hrTicker", "serverShutdown", "x", MISSING]))})
    wrapper = draw(st.sampled_from(["combined", "raw", "data is not an object", "data is an array"]))
    if wrapper == "raw":
        return orjson.dumps(payload)
    data: Any = {"combined": payload, "data is not an object": 5, "data is an array": [payload]}[wrapper]
    return orjson.dumps({"stream": "btcusdt@ticker", "data": data})


@st.composite
def gate_frames(draw: st.DrawFn) -> bytes:
    frame = gate_ticker(draw(st.sampled_from(["BTC_USDT", "ETH_USDT", "XRP_USDT"])), "1", 1_000)
    fill(frame["result"], dict(zip(GATE_NUMBERS, draw(NUMBERS), strict=True)))
    fill(
        frame,
        {
            "time_ms": draw(TIME),
            "time": draw(TIME),
            "channel": draw(st.sampled_from(["spot.tickers", "spot.trades", MISSING])),
            "event": draw(st.sampled_from(["update", "subscribe", MISSING])),
        },
    )
    if draw(st.integers(0, 3)) == 0:
        frame["result"] = draw(st.sampled_from([[], None, "x"]))
    return orjson.dumps(frame)


def outcome(parse: Any, frame: bytes) -> object:
    """What a parser makes of a frame, comparable: the Ticker and its strings, the control
    message, or the rejection's type and reason."""
    try:
        result = parse(frame, RX)
    except MalformedMessage as exc:
        return type(exc), str(exc)
    if isinstance(result, Ticker):
        # The wire form in epoch ms: a time past year 9999 is accepted (by both) but has no datetime.
        return ticker_wire(result, result.event_ms, 0), result.wire_text, result.received_at
    return result


@THOROUGH
@given(frame=binance_frames())
@example(frame=orjson.dumps({"stream": "x", "data": binance_ticker("BTCUSDT", "97000.5", 0)}))
@example(frame=orjson.dumps({"stream": "x", "data": binance_ticker("BTCUSDT", "1", 1, e="serverShutdown")}))
@example(frame=orjson.dumps({"stream": "x", "data": binance_ticker("XRPUSDT", "1", 1)}))
@example(frame=b'{"data":{"e":"24hrTicker"}} trailing')
def test_binance_typed_decoding_gives_what_the_general_parser_gives(frame):
    feed = BinanceFeed(SYMBOLS, base_url="wss://x")
    assert outcome(feed.parse, frame) == outcome(feed._parse_any, frame)


@THOROUGH
@given(frame=gate_frames())
@example(frame=orjson.dumps(gate_ticker("BTC_USDT", "97000.5", 0)))
@example(frame=orjson.dumps({**gate_ticker("BTC_USDT", "1", 5_000), "event": "subscribe"}))
@example(frame=orjson.dumps({**gate_ticker("BTC_USDT", "1", 5_000), "channel": "spot.trades"}))
@example(frame=orjson.dumps({k: v for k, v in gate_ticker("BTC_USDT", "1", 5_000).items() if k != "time_ms"}))
def test_gate_typed_decoding_gives_what_the_general_parser_gives(frame):
    feed = GateioFeed(SYMBOLS, url="wss://x")
    assert outcome(feed.parse, frame) == outcome(feed._parse_any, frame)


@pytest.mark.parametrize("as_text", [False, True])
def test_well_formed_ticker_frames_never_reach_the_general_parser(monkeypatch, as_text):
    """The point of the typed decoders: the common frame is decoded once, into the strings."""
    binance, gate = BinanceFeed(SYMBOLS, base_url="wss://x"), GateioFeed(SYMBOLS, url="wss://x")
    for feed in (binance, gate):
        monkeypatch.setattr(feed, "_parse_any", lambda *_: pytest.fail("took the general parser"))
    frames = [
        (binance, orjson.dumps({"stream": "btcusdt@ticker", "data": binance_ticker("BTCUSDT", "97000.5", 7)})),
        (gate, orjson.dumps(gate_ticker("ETH_USDT", "3400.25", 7))),
    ]
    for feed, frame in frames:
        t = feed.parse(frame.decode() if as_text else frame, RX)
        assert isinstance(t, Ticker) and t.event_ms == 7 and t.wire_text is not None


# --- the set of plain-decimal shapes ---------------------------------------------------------------

# Characters a frame's number may hold, and for each the ones the shape set cannot tell from it.
CHARACTERS = "0123456789.-|+eE _x٣²"


def same_shape(c: str) -> list[str]:
    shape = c.encode().translate(base.DIGITS_AS_ZERO)
    return [d for d in CHARACTERS if d.encode().translate(base.DIGITS_AS_ZERO) == shape]


@RELAXED
@given(raw=st.tuples(POSITIVE_PLAIN, *[PLAIN] * 7), data=st.data())
def test_a_ticker_whose_shape_was_seen_before_equals_the_eager_one(raw, data):
    """A shape that matched answers for every text of that shape: whatever the shape set takes
    for the same shape (as its translation table says) is what the regex and eager parsing say."""
    assert isinstance(build_ticker(("binance", "BTC/USDT"), raw, 1, RX), Ticker)  # its shape is known now
    for _ in range(3):
        other = tuple("".join(data.draw(st.sampled_from(same_shape(c))) for c in text) for text in raw)
        try:
            got: Ticker | str = build_ticker(("binance", "BTC/USDT"), other, 1, RX)
        except MalformedMessage as exc:
            got = str(exc)
        want = eager(other, 1)
        if isinstance(want, str):
            assert got == want
        else:
            assert isinstance(got, Ticker)
            assert_same(got, want)
            assert got.wire_text == other  # the same shape as a plain text: plain too


def test_texts_of_one_shape_all_match_the_regex_or_all_fail():
    """Every text of up to three characters from CHARACTERS, grouped by shape."""
    verdicts: dict[bytes, set[bool]] = {}
    for text in map("".join, itertools.product(["", *CHARACTERS], repeat=3)):
        joined = "|".join((text, "1", "1", "1", "1", "1", "1", "1"))
        shape = joined.encode().translate(base.DIGITS_AS_ZERO)
        verdicts.setdefault(shape, set()).add(base._plain8(joined) is not None)
    assert all(len(v) == 1 for v in verdicts.values())
    assert {True, False} == set().union(*verdicts.values())


def test_the_shape_set_is_bounded(monkeypatch):
    monkeypatch.setattr(base, "MAX_PLAIN_SHAPES", 3)
    monkeypatch.setattr(base, "plain_shapes", {})
    for digits in range(1, 10):
        raw = ("1" * digits, "1", "1", "1", "1", "1", "1", "1")
        assert build_ticker(("binance", "BTC/USDT"), raw, 1, RX).wire_text == raw
        assert len(base.plain_shapes) <= 3
    with pytest.raises(MalformedMessage, match="not a decimal"):
        build_ticker(("binance", "BTC/USDT"), ("1", "1", "1", "1", "1", "1", "1", "\ud800"), 1, RX)
