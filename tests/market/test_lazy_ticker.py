"""Lazily parsed tickers are invisible to consumers (issue 19): a parser keeps the exchange's
decimal strings and parses them when read, and every reading, comparison, hash and wire form
equals what eager `Decimal` parsing gives; frames the eager parser rejected are still rejected."""

from datetime import UTC, datetime
from decimal import MAX_PREC, Context, Decimal, InvalidOperation, localcontext

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sage.market.candles import CandleAggregator
from sage.market.feeds.base import MalformedMessage, build_ticker
from sage.market.feeds.binance import BinanceFeed
from sage.market.feeds.gateio import GateioFeed
from sage.market.models import Ticker, ms_to_datetime, ticker_from_json, ticker_to_json, ticker_to_wire
from tests.market.fakes import binance_ticker, gate_ticker

RX = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ("binance", "BTC/USDT")
FIELDS = ("last", "bid", "ask", "change_pct", "high", "low", "base_volume", "quote_volume")

# No deadline and no slow-generation check: the machine running the suite may be busy.
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def plain(n: int, places: int, pad: int, negative: bool) -> str:
    """Plain decimal text as exchanges write it: sign, digits (leading zeros too), optional fraction."""
    digits = str(n).rjust(places + 1, "0")
    whole, fraction = digits[: len(digits) - places], digits[len(digits) - places :]
    return ("-" if negative else "") + "0" * pad + whole + ("." + fraction if places else "")


PLAIN = st.builds(plain, st.integers(0, 10**24), st.integers(0, 20), st.integers(0, 2), st.booleans())
POSITIVE_PLAIN = st.builds(plain, st.integers(1, 10**24), st.integers(0, 20), st.integers(0, 2), st.just(False))
# Anything: plain text, other spellings Decimal accepts, and text it does not.
ANY_TEXT = st.one_of(
    PLAIN,
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "-", ".", "5.", ".5", "+1", " 1", "1_000", "1e3", "1.2.3", "--1", "NaN", "-Infinity", "١٢"]),
    st.text(alphabet="0123456789.-+eE_ |", max_size=12),
    st.text(max_size=6),
)
ANY_VALUE = st.one_of(
    ANY_TEXT, st.integers(), st.floats(allow_nan=False), st.none(), st.lists(st.integers(), max_size=1)
)


def eager(raw: tuple[object, ...], event_ms: int) -> Ticker | str:
    """The reference: every field through Decimal at once (the parser before issue 19).
    Returns the Ticker, or the MalformedMessage text it raised."""
    if not all(type(v) is str for v in raw):
        return "numeric field is not a string"
    try:
        values = [Decimal(v) for v in raw]  # type: ignore[arg-type]
    except InvalidOperation:
        return "numeric field is not a decimal"
    if not all(v.is_finite() for v in values):
        return "numeric field is not finite"
    if values[0] <= 0:
        return "ticker with a non-positive last price"
    return Ticker(*KEY, *values, ms_to_datetime(event_ms), RX)


def built(raw: tuple[object, ...], event_ms: int) -> Ticker | str:
    try:
        return build_ticker(KEY, raw, event_ms, RX)
    except MalformedMessage as exc:
        return str(exc)


def assert_same(lazy: Ticker, reference: Ticker) -> None:
    for name in FIELDS:
        got, want = getattr(lazy, name), getattr(reference, name)
        assert type(got) is Decimal and got == want
        assert got.as_tuple() == want.as_tuple()  # the same digits and exponent, not only the same value
    assert (lazy.event_time, lazy.received_at, lazy.key) == (reference.event_time, reference.received_at, reference.key)
    assert lazy == reference and hash(lazy) == hash(reference) and repr(lazy) == repr(reference)
    wire, reference_wire = ticker_to_wire(lazy), ticker_to_wire(reference)
    for name in FIELDS:  # the wire may keep the exchange's spelling; it reads back to the same value
        assert Decimal(wire[name]).as_tuple() == Decimal(reference_wire[name]).as_tuple()
    assert {k: v for k, v in wire.items() if k not in FIELDS} == {
        k: v for k, v in reference_wire.items() if k not in FIELDS
    }
    assert ticker_from_json(ticker_to_json(lazy)) == reference


@RELAXED
@given(raw=st.tuples(POSITIVE_PLAIN, *[PLAIN] * 7), event_ms=st.integers(1, 4_000_000_000_000))
@example(raw=("1", "0", "-0", "007", "0.10", "-1.50", "1" * 20, "0." + "0" * 19 + "1"), event_ms=1001)
def test_plain_fields_read_lazily_equal_eager_decimals(raw, event_ms):
    lazy = built(raw, event_ms)
    assert isinstance(lazy, Ticker)
    assert lazy.wire_text == raw  # kept as text until read ...
    assert_same(lazy, eager(raw, event_ms))  # ... and read as Decimal(text)


@RELAXED
@given(raw=st.tuples(POSITIVE_PLAIN, *[PLAIN] * 7), order=st.permutations(FIELDS))
def test_the_order_fields_are_read_in_does_not_matter(raw, order):
    lazy = built(raw, 1)
    assert isinstance(lazy, Ticker)
    values = {name: getattr(lazy, name) for name in order}
    assert values == {name: Decimal(text) for name, text in zip(FIELDS, raw, strict=True)}
    assert all(getattr(lazy, name) is values[name] for name in FIELDS), "parsed once, then cached"


@RELAXED
@given(raw=st.tuples(*[ANY_VALUE] * 8), event_ms=st.integers(1, 4_000_000_000_000))
@example(raw=("1", "2", "3", "4", "5", "6", "7", "8|9"), event_ms=1)
@example(raw=("-0", "1", "1", "1", "1", "1", "1", "1"), event_ms=1)
@example(raw=("1", "1", "1", "1", "1", "1", "1", "1e999999999"), event_ms=1)
def test_acceptance_and_rejection_are_those_of_eager_parsing(raw, event_ms):
    got, want = built(raw, event_ms), eager(raw, event_ms)
    if isinstance(want, str):
        assert got == want  # rejected, for the same reason
    else:
        assert isinstance(got, Ticker)
        assert_same(got, want)


@RELAXED
@given(price=POSITIVE_PLAIN, volume=PLAIN, event_ms=st.integers(1, 4_000_000_000_000))
def test_both_parsers_hand_consumers_eager_values(price, volume, event_ms):
    symbols = ["BTC/USDT"]
    b = BinanceFeed(symbols, base_url="wss://x").parse(
        orjson.dumps({"stream": "btcusdt@ticker", "data": binance_ticker("BTCUSDT", price, event_ms, v=volume)}), RX
    )
    g = GateioFeed(symbols, url="wss://x").parse(orjson.dumps(gate_ticker("BTC_USDT", price, event_ms)), RX)
    for t in (b, g):
        assert isinstance(t, Ticker)
        assert t.last == Decimal(price) and t.event_ms == event_ms and t.event_time == ms_to_datetime(event_ms)
    assert isinstance(b, Ticker) and b.base_volume.as_tuple() == Decimal(volume).as_tuple()


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "1.2.3", "", "-", "1e", None, 5, 5.5, ["1"]])
@pytest.mark.parametrize("index", range(8))
def test_a_bad_value_in_any_field_rejects_the_frame(bad, index):
    raw: list[object] = ["97000.5", "97000.4", "97000.6", "-1.2", "98000", "96000", "1234.5", "119000000.25"]
    raw[index] = bad
    with pytest.raises(MalformedMessage):
        build_ticker(KEY, tuple(raw), 1, RX)


@RELAXED
@given(
    ticks=st.lists(st.tuples(POSITIVE_PLAIN, POSITIVE_PLAIN, st.integers(0, 180_000)), min_size=1, max_size=30),
)
def test_candles_from_lazy_tickers_equal_candles_from_eager_ones(ticks):
    lazy_bars, eager_bars = CandleAggregator(), CandleAggregator()
    ticks.sort(key=lambda tick: tick[2])
    for price, volume, at in ticks:
        raw = (price, price, price, "0", price, price, volume, volume)
        lazy, reference = built(raw, 1 + at), eager(raw, 1 + at)
        assert isinstance(lazy, Ticker) and isinstance(reference, Ticker)
        lazy_bars.add(lazy)
        eager_bars.add(reference)
    assert lazy_bars.drain() == eager_bars.drain()


def test_retimed_keeps_the_strings_and_moves_only_the_time():
    t = build_ticker(KEY, ("2", "1", "3", "0.5", "4", "1", "10", "20"), 1_000, RX)
    later = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    moved = t.retimed(later)
    assert moved.event_time == later and moved.event_ms == 1_767_225_605_000
    assert moved.wire_text == t.wire_text and moved.bid == Decimal("1") and t.event_ms == 1_000


# Decimal texts a float cannot tell apart (and equal values spelled differently).
FLOAT_TIES = st.sampled_from(
    ["1", "1.0", "1.00", "1.00000000000000000001", "0.99999999999999999999", "1.0000000000000000000200"]
)
TICK_TEXT = st.one_of(FLOAT_TIES, POSITIVE_PLAIN)


def reference_bars(ticks: list[tuple[str, str, int]]) -> list[tuple[object, ...]]:
    """One-minute bars by definition, in exact Decimals: open, high, low and close as first seen
    (a later equal value does not replace a high or low), volume the sum of every growth of
    the rolling volume since the previous update (across the minute boundary too)."""
    bars: dict[int, list[object]] = {}
    previous: Decimal | None = None
    with localcontext(Context(prec=MAX_PREC)):  # no rounding at all (the default rounds at 28 digits)
        for price_text, volume_text, at in ticks:
            price, volume = Decimal(price_text), Decimal(volume_text)
            growth = max(Decimal(0), volume - previous) if previous is not None else Decimal(0)
            previous = volume
            bar = bars.get(at // 60_000)
            if bar is None:
                bars[at // 60_000] = [price, price, price, price, growth, 1]
                continue
            if price > bar[1]:  # type: ignore[operator]
                bar[1] = price
            if price < bar[2]:  # type: ignore[operator]
                bar[2] = price
            bar[3] = price
            bar[4] += growth  # type: ignore[operator]
            bar[5] += 1  # type: ignore[operator]
    return [(minute, *values) for minute, values in sorted(bars.items())]


# A volume whose growths sum to 29 significant digits: exact, where Decimal's default rounds.
WIDE_VOLUMES = [("1", "1", 0), ("1", "10000000000000", 1), ("1", "5", 2), ("1", "5.0000000000000001", 3)]


@RELAXED
@given(
    ticks=st.lists(st.tuples(TICK_TEXT, st.one_of(TICK_TEXT, PLAIN), st.integers(0, 180_000)), min_size=1, max_size=30)
)
@example(ticks=[("1", "1", 0), ("1.0", "1.00000000000000000001", 1), ("1.00000000000000000001", "1", 2)])
@example(ticks=[("1", "-1", 0), ("1", "-2", 1), ("1", "-3", 2), ("1", "-1", 3)])  # signed texts reverse text order
@example(ticks=[("1", "1", 0), ("2", "-2", 1), ("2", "-3", 2), ("2", "-1", 3)])
# Equal values spelled with more or fewer zeros (one candle class: text order is number order
# but for these): the high and low stay the first spelling seen.
@example(ticks=[("1", "1", 0), ("1.0", "1", 1), ("1.00", "1", 2)])
@example(ticks=[("2", "1", 0), ("1.00", "1", 1), ("1.0", "1", 2), ("1", "1", 3)])
@example(ticks=[("2.319", "5.1", 0), ("2.3189", "5.10", 1), ("2.3190", "5.1", 2), ("2.31890", "5.2", 3)])
@example(ticks=WIDE_VOLUMES)
def test_candles_equal_eager_decimal_bars_also_where_floats_tie(ticks):
    """Candles compare texts of one candle class, floats otherwise, and the Decimals only on a float tie:
    the bars are exactly the Decimal definition's, digits and exponent of every price included."""
    ticks.sort(key=lambda tick: tick[2])
    bars = CandleAggregator()
    for price, volume, at in ticks:
        lazy = built((price, price, price, "0", price, price, volume, volume), at)
        assert isinstance(lazy, Ticker)
        bars.add(lazy)
    got = bars.drain()
    want = reference_bars(ticks)
    assert len(got) == len(want)
    for candle, (minute, o, h, low, c, volume, count) in zip(got, want, strict=True):
        assert candle.start == ms_to_datetime(minute * 60_000)
        for value, expected in ((candle.open, o), (candle.high, h), (candle.low, low), (candle.close, c)):
            assert value.as_tuple() == expected.as_tuple()  # type: ignore[attr-defined]
        assert (candle.volume, candle.ticks) == (volume, count)
