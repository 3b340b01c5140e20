"""The common ticker frame, from text to the pipeline and the candle, in one function per feed.

Nearly every frame an exchange sends is a ticker update of a subscribed symbol whose eight
numbers have a shape seen before. The general path (`FeedFrameHandler`) takes such a frame
through six Python calls (handler, parse, `build_ticker`, `exchange_ticker`, `submit`,
`candles.add`) and finds the symbol's state in two dicts by its key tuple. This path does the
same work in one function, with one look-up by the exchange's own symbol of the `KeyState` that
holds the out-of-order guard, the pending update and the bar in progress (issue 19: those calls
and look-ups were a quarter of the per-frame time).

Every other frame takes the general path, which stays the one definition of each step: another
message, a symbol not seen yet, a number shape not seen yet (or not a plain decimal), a
non-positive price, an event time out of bounds, an update older than the last, a bar that
text comparison cannot update. tests/market/test_hot_path.py checks, property-based, that both
paths give the same tickers, counts and candles.
"""

from __future__ import annotations

from collections.abc import Callable

from sage.market.candles import MAX_RUN_TEXTS, longer_spelling
from sage.market.feeds.base import DIGITS_AS_ZERO, MAX_EVENT_MS, TYPED_DECODE_ERRORS, TickerDecoder, plain_shapes
from sage.market.models import Ticker
from sage.market.pipeline import KeyState, MarketPipeline

MAX_AHEAD_MS = 300_000  # an event time this far past the receive time is refused (5 minutes of clock skew)

FrameHandler = Callable[[str | bytes, float], str | None]
# The general path: the control answer for the frame, and the ticker it submitted if any
GeneralPath = Callable[[str | bytes, float], tuple[str | None, Ticker | None]]


def hot_frame_handler(decoder: TickerDecoder, pipeline: MarketPipeline, general: GeneralPath) -> FrameHandler:
    """The connection runner's frame callback for one feed: the common ticker frame here,
    every other frame through `general`."""
    decode = decoder.decode
    time_on_ticker = decoder.time_on_ticker
    lanes: dict[str, KeyState] = {}  # exchange symbol -> its state, filled as the general path accepts one
    shapes, digits_as_zero = plain_shapes, DIGITS_AS_ZERO
    enqueue, reject = pipeline.enqueue, pipeline.reject
    candles = pipeline.candles
    decode_error = TYPED_DECODE_ERRORS

    def fall_back(frame: str | bytes, received_at: float, symbol: str | None) -> str | None:
        control, ticker = general(frame, received_at)
        if ticker is not None and symbol is not None:
            state = pipeline.key_state(ticker.key)
            if state is not None:
                lanes[symbol] = state
        return control

    def handle(frame: str | bytes, received_at: float) -> str | None:
        rx_ms = int(received_at * 1000)  # receive times are kept to the millisecond, as stored
        try:
            message = decode(frame)
        except decode_error:  # not a ticker update
            return fall_back(frame, received_at, None)
        t = message.ticker
        event_ms = t.event_ms if time_on_ticker else message.event_ms
        lane = lanes.get(t.symbol)
        if lane is None or not 0 < event_ms <= MAX_EVENT_MS or event_ms > rx_ms + MAX_AHEAD_MS:
            return fall_back(frame, received_at, t.symbol)
        text = (t.last, t.bid, t.ask, t.change_pct, t.high, t.low, t.base_volume, t.quote_volume)
        joined = "|".join(text)
        candle_class = shapes.get(joined.encode().translate(digits_as_zero))
        price = text[0]
        # A plain decimal <= 0, checked as `build_ticker` checks it
        if candle_class is None or (price < "1" and (price[0] == "-" or not price.strip("0."))):
            return fall_back(frame, received_at, t.symbol)  # an unseen shape, or a price <= 0
        if event_ms <= lane.last_ms:
            reject(lane)
            return None
        lane.last_ms = event_ms
        # MarketPipeline.submit's steps: the update waits for the flush as its texts and times
        # (no Ticker is built for it), then its bar takes it.
        if lane.pending is None:
            enqueue(lane)
        lane.pending = text
        lane.pending_rx_ms = rx_ms
        lane.count += 1
        if candles is not None:
            bar = lane.bar
            volume = text[6]
            if bar is not None and event_ms < bar.end_ms and candle_class is bar.candle_class:
                # High, low and close share this update's candle class: the texts compare as the
                # numbers do, but for an equal value spelled with more trailing zeros, which
                # replaces no high or low and ends no run of volume growth (`startswith` first:
                # a text that merely sorts after another is seldom its longer spelling).
                high_text = bar.high_text
                if price > high_text:
                    if not (price.startswith(high_text) and longer_spelling(price, high_text)):
                        bar.high_text = price
                else:
                    low_text = bar.low_text
                    if price < low_text and not (low_text.startswith(price) and longer_spelling(low_text, price)):
                        bar.low_text = price
                close_volume = bar.close_volume_text
                if volume < close_volume and not (
                    close_volume.startswith(volume) and longer_spelling(close_volume, volume)
                ):
                    # Old trades left the 24 h window: a run of growth ends (OpenBar.end_run,
                    # inline: this happens at about every other update).
                    first_volume = bar.run_start_volume
                    if first_volume is not close_volume:
                        runs = bar.runs
                        runs += (first_volume, close_volume)
                        if len(runs) >= MAX_RUN_TEXTS:
                            bar.fold()
                    bar.run_start_volume = volume
                bar.close_text, bar.close_volume_text = price, volume
                bar.ticks += 1
            else:  # a new minute, or texts that do not line up: floats, Decimals on a tie
                lane.bar = candles.update(lane.key, event_ms, price, volume, candle_class)
        return None

    return handle
