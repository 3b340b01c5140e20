"""Joins an exchange module (pure parsing) to the connection runner (pure networking)
and the pipeline: one `ExchangeFeedRunner` per exchange, one runner per connection."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sage.market.connection import Backoff, ConnectionRunner, ConnectionSpec, Heartbeat
from sage.market.feeds.base import Control, ControlKind, DynamicFeed, ExchangeFeed, MalformedMessage
from sage.market.hot_path import MAX_AHEAD_MS, FrameHandler, hot_frame_handler
from sage.market.models import Ticker
from sage.market.pipeline import MarketPipeline
from sage.observability.metrics import Metrics

log = logging.getLogger(__name__)

_ONE_MS = timedelta(milliseconds=1)


class FeedFrameHandler:
    """Frame -> parser -> pipeline. A malformed or unexpected frame is counted and
    logged (at most once per `log_interval` seconds per feed, with a count of the
    ones not logged) and never stops the feed.

    `handle` is the connection runner's frame callback: the common ticker frame takes the hot
    path (sage.market.hot_path), every other frame, and every frame of a replay, the general
    path here."""

    def __init__(
        self,
        feed: ExchangeFeed,
        pipeline: MarketPipeline,
        metrics: Metrics,
        *,
        retime: bool = False,
        log_interval: float = 30.0,
    ) -> None:
        self.feed = feed
        self.exchange = feed.exchange
        self.pipeline = pipeline
        self._parse = feed.parse  # bound once: this runs per frame
        self._submit = pipeline.submit
        self.metrics = metrics
        self.retime = retime  # replay: stamp each update with the time it is replayed
        self.log_interval = log_interval
        self.malformed = 0
        self.errors = 0
        self.acks = 0
        self.reconnect_notices = 0
        self._last_log = -float("inf")
        self._suppressed = 0
        self._rx_ms = -1
        self._rx_datetime = datetime.fromtimestamp(0, UTC)
        self._replayed: dict[tuple[str, str], datetime] = {}
        decoder = feed.ticker_decoder
        self.handle: FrameHandler = (
            hot_frame_handler(decoder, pipeline, self._general)
            if decoder is not None and not retime
            else self._handle_general
        )

    def _handle_general(self, frame: str | bytes, received_at: float) -> str | None:
        return self._general(frame, received_at)[0]

    def _general(self, frame: str | bytes, received_at: float) -> tuple[str | None, Ticker | None]:
        """Any frame: the control answer to give the runner, and the ticker submitted."""
        # Receive times are kept to the millisecond (as stored); frames of one millisecond
        # share one datetime, which also spares the encoder a conversion per update.
        rx_ms = int(received_at * 1000)
        if rx_ms != self._rx_ms:
            self._rx_ms = rx_ms
            self._rx_datetime = datetime.fromtimestamp(rx_ms / 1000, UTC)
        try:
            result = self._parse(frame, self._rx_datetime)
        except MalformedMessage as exc:
            self._malformed(exc, frame)
            return None, None
        if type(result) is Ticker:
            if self.retime:
                result = self._retimed(result)
            elif result.event_ms > rx_ms + MAX_AHEAD_MS:
                # a time from the future would hold the symbol's out-of-order guard (and its
                # candles) until the clock caught up with it: refused, counted, logged
                ahead = (result.event_ms - rx_ms) / 1000
                self._malformed(
                    MalformedMessage(f"event time {ahead:.0f} s ahead of this machine's clock (is the clock behind?)"),
                    frame,
                )
                return None, None
            self._submit(result)
            return None, result
        assert isinstance(result, Control)
        return self._control(result), None

    def _malformed(self, exc: MalformedMessage, frame: str | bytes) -> None:
        self.malformed += 1
        self.metrics.incr("FeedMalformed", exchange=self.exchange)
        self._log_malformed(exc, frame)

    def _retimed(self, ticker: Ticker) -> Ticker:
        """Replay: the update happens now. Strictly later than the symbol's previous replayed
        update, so a fast replay (or a loop restarting) never looks like a duplicate."""
        stamp = self._rx_datetime
        previous = self._replayed.get(ticker.key)
        if previous is not None and stamp <= previous:
            stamp = previous + _ONE_MS
        self._replayed[ticker.key] = stamp
        return ticker.retimed(stamp)

    def _control(self, control: Control) -> str | None:
        kind = control.kind
        if kind is ControlKind.RECONNECT:
            self.reconnect_notices += 1
            log.info("exchange asked for a new connection", extra={"feed": self.exchange, "notice": control.detail})
            return control.detail or "reconnect"
        if kind is ControlKind.ERROR:
            self.errors += 1
            self.metrics.incr("FeedErrors", exchange=self.exchange)
            log.warning("exchange rejected a request", extra={"feed": self.exchange, "error": control.detail[:300]})
        elif kind is ControlKind.ACK:
            self.acks += 1
        return None

    def _log_malformed(self, exc: MalformedMessage, frame: str | bytes) -> None:
        now = time.monotonic()
        if now - self._last_log < self.log_interval:
            self._suppressed += 1
            return
        sample = frame[:200] if isinstance(frame, str) else frame[:200].decode("utf-8", "replace")
        log.warning(
            "malformed market message ignored",
            extra={"feed": self.exchange, "error": str(exc), "sample": sample, "suppressed": self._suppressed},
        )
        self._last_log = now
        self._suppressed = 0


@dataclasses.dataclass(frozen=True)
class RunnerOptions:
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    reset_after: float = 60.0
    watchdog: float = 30.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    open_timeout: float = 10.0


class ExchangeFeedRunner:
    """All connections of one exchange; runs until cancelled."""

    def __init__(
        self,
        feed: ExchangeFeed,
        pipeline: MarketPipeline,
        metrics: Metrics,
        options: RunnerOptions,
        *,
        backoff_factory: Callable[[], Backoff] | None = None,
    ) -> None:
        self.feed = feed
        self.handler = FeedFrameHandler(feed, pipeline, metrics)
        self.runners: list[ConnectionRunner] = []
        for plan in feed.plans():
            heartbeat = None
            if plan.heartbeat is not None:
                # The heartbeat must come well inside the watchdog window, or a quiet but
                # healthy connection would be replaced.
                interval = min(plan.heartbeat.interval, options.watchdog / 2)
                heartbeat = Heartbeat(plan.heartbeat.message, interval, plan.heartbeat.only_when_quiet)
            spec = ConnectionSpec(
                name=plan.name,
                url=plan.url,
                on_open=plan.subscribe,
                send_rate=plan.send_rate,
                heartbeat=heartbeat,
                max_lifetime=plan.max_lifetime,
                labels={"exchange": feed.exchange},
            )
            backoff = backoff_factory() if backoff_factory else Backoff(options.backoff_initial, options.backoff_max)
            self.runners.append(
                ConnectionRunner(
                    spec,
                    self.handler.handle,
                    metrics=metrics,
                    backoff=backoff,
                    watchdog=options.watchdog,
                    reset_after=options.reset_after,
                    ping_interval=options.ping_interval,
                    ping_timeout=options.ping_timeout,
                    open_timeout=options.open_timeout,
                )
            )

    async def set_dynamic(self, symbols: Sequence[str]) -> tuple[list[str], list[str]]:
        """Subscribe to `symbols` beyond the configured ones (most wanted first; cut to
        what the carrying connection can take) and unsubscribe from the rest, on the
        running connection: the other streams are not touched. Returns (added, removed)."""
        feed = self.feed
        if not isinstance(feed, DynamicFeed):
            raise TypeError(f"{feed.exchange} takes no runtime subscriptions")
        static = set(feed.symbols)
        wanted = [s for s in dict.fromkeys(symbols) if s not in static][: feed.dynamic_room()]
        wanted_set = set(wanted)
        current = set(feed.dynamic)
        added = [s for s in wanted if s not in current]
        removed = [s for s in feed.dynamic if s not in wanted_set]
        if not added and not removed:
            return [], []
        feed.track(added)
        feed.dynamic = wanted  # a reconnect subscribes exactly these
        carrier = self.runners[-1]
        for message in [*feed.control_messages(False, removed), *feed.control_messages(True, added)]:
            if not await carrier.send(message):
                break  # not connected: its next on_open subscribes `wanted`
        return added, removed

    async def run(self) -> None:
        await asyncio.gather(*(runner.run() for runner in self.runners))
