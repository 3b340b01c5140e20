"""A measuring device, not Sage code: the least CPU this Python can spend on Sage's per-frame work.

`bench.bench_market_pipeline` runs it on the same frames as Sage, beside the peers, to show
what limits the feed throughput goals (issue 19). It is Sage's hot path (sage.market.hot_path)
stripped to what every ticker frame needs, in one function, with no metrics:
- decode with Sage's own typed msgspec decoder (the same C work);
- the symbol look-up, the event-time bounds (after 0, before year 10,000, at most 5 minutes past
  the receive time) and the out-of-order guard;
- the plain-decimal check through Sage's shape set, and a positive last price;
- the eight strings and the receive time kept as the symbol's pending update (coalescing);
- the one-minute candle: high, low, close and where a run of volume growth starts, compared as
  text.
It leaves out what Sage also does: the exact volume runs (kept and summed at the bar's close),
closing a bar into a `Candle`, the equal-spelling checks, the float path, the rare frames and the
flush's encoding. So it is a lower bound on CPU, not an alternative implementation. Frames it
cannot take (another shape, an unknown symbol) raise: the benchmark's frames are all tickers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sage.market.feeds import base, binance, gateio
from sage.market.hot_path import MAX_AHEAD_MS


class _Key:
    """One symbol: its key, guard, pending update and bar in progress."""

    __slots__ = (
        "candle_class",
        "close_text",
        "close_volume",
        "count",
        "high_text",
        "key",
        "last_ms",
        "low_text",
        "minute",
        "open_text",
        "pending",
        "pending_rx_ms",
        "run_start",
        "ticks",
    )

    open_text: str
    high_text: str
    low_text: str
    close_text: str
    close_volume: str
    run_start: str
    pending_rx_ms: int

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        self.last_ms = 0
        self.pending: tuple[str, ...] | None = None
        self.count = 0
        self.minute = -1
        self.candle_class: bytes | None = None
        self.ticks = 0


def handler(exchange: str, symbols: Sequence[str]) -> tuple[Callable[[str, float], None], list[_Key]]:
    """The fused per-frame function for `exchange` and the list of symbols with a pending update
    (what a flush would take)."""
    native = binance.exchange_symbol if exchange == "binance" else gateio.currency_pair
    keys = {native(s): _Key((exchange, s)) for s in symbols}
    waiting: list[_Key] = []
    shapes, digits_as_zero, new_shape = base.plain_shapes, base.DIGITS_AS_ZERO, base.new_plain_shape
    is_binance = exchange == "binance"
    decode: Any = binance._decode_combined_ticker if is_binance else gateio._decode_ticker_update

    def handle(frame: str, received_at: float) -> None:
        rx_ms = int(received_at * 1000)
        message = decode(frame)
        t = message.ticker
        state = keys.get(t.symbol)
        ms = t.event_ms if is_binance else message.event_ms
        raw = (t.last, t.bid, t.ask, t.change_pct, t.high, t.low, t.base_volume, t.quote_volume)
        if state is None or not 0 < ms <= base.MAX_EVENT_MS or ms > rx_ms + MAX_AHEAD_MS:
            raise ValueError("not a ticker this floor takes")
        joined = "|".join(raw)
        shape = joined.encode().translate(digits_as_zero)
        candle_class = shapes.get(shape) or new_shape(joined, shape)
        last = raw[0]
        first = last[0]
        if candle_class is None or ((first == "0" or first == "-") and (first == "-" or not last.strip("0."))):
            raise ValueError("not a plain positive ticker")
        if ms <= state.last_ms:
            return
        state.last_ms = ms
        if state.pending is None:
            waiting.append(state)
        state.pending, state.pending_rx_ms = raw, rx_ms
        state.count += 1
        minute = ms // 60_000
        volume = raw[6]
        if minute == state.minute and candle_class is state.candle_class:
            if last > state.high_text:
                state.high_text = last
            elif last < state.low_text:
                state.low_text = last
            if volume < state.close_volume:
                state.run_start = volume
            state.close_text, state.close_volume = last, volume
            state.ticks += 1
        else:
            state.minute, state.candle_class, state.ticks = minute, candle_class, 1
            state.open_text = state.high_text = state.low_text = state.close_text = last
            state.close_volume = state.run_start = volume

    return handle, waiting
