"""The Discord notifier: one queue per webhook, delivered in the background.

`Notifier.send` only appends to a queue (from any thread) and never raises, so a request
that reports something is never slowed down by Discord. Each webhook has a worker that
packs queued alerts into as few messages as the limits allow (10 embeds, 6000
characters), honours 429 `retry_after` and the `X-RateLimit-Remaining/Reset-After`
headers, retries 5xx and timeouts with bounded exponential backoff, and disables a
webhook Discord says is gone (401/404). An alert that cannot be delivered is logged with
the reason; webhook URLs (they carry a token) are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

import sage.notify.discord_limits as limits
from sage.notify.channels import Alert, Channel
from sage.notify.discord import Origin, alert_embed, alerts_message, repeated_alert
from sage.notify.grouping import RepeatGrouper, Repeats
from sage.observability.metrics import Metrics

if TYPE_CHECKING:
    from sage.settings import Settings

log = logging.getLogger("sage.notify")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class WebhookSender:
    """One webhook: its queue, its rate-limit state and its delivery loop."""

    def __init__(
        self,
        channel: Channel,
        url: str,
        *,
        origin: Origin,
        metrics: Metrics,
        timeout: float = 10.0,
        max_attempts: int = 5,
        queue_size: int = 10_000,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        max_rate_limit_wait: float = 900.0,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        on_disabled: Callable[[Channel, str], None] | None = None,
    ) -> None:
        self.channel = channel
        self._url = url
        self.origin = origin
        self.metrics = metrics
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.queue_size = queue_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_rate_limit_wait = max_rate_limit_wait
        self._sleep = sleep
        self._clock = clock
        self._on_disabled = on_disabled
        self._queue: deque[Alert] = deque()
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.blocked_until = 0.0
        self.disabled = False
        self.delivered = 0
        self.dropped = 0

    def __repr__(self) -> str:  # never show the URL: it carries the webhook token
        return f"WebhookSender(channel={self.channel.value!r}, pending={len(self._queue)})"

    # -- queue ------------------------------------------------------------------------------------
    def put(self, alert: Alert) -> None:
        if self.disabled:
            self.drop([alert], "webhook disabled")
            return
        if len(self._queue) >= self.queue_size:
            self.drop([alert], "queue full")
            return
        self._queue.append(alert)
        if self._idle is not None:
            self._idle.clear()
        if self._wake is not None:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def drop(self, alerts: list[Alert], reason: str) -> None:
        if not alerts:
            return
        self.dropped += len(alerts)
        self.metrics.incr(
            "DiscordAlertsDropped", len(alerts), channel=self.channel.value, reason=reason.split(" ", 1)[0]
        )
        for alert in alerts[:10]:
            log.error(
                "alert undeliverable",
                extra={"channel": self.channel.value, "reason": reason, "title": alert.title},
            )
        if len(alerts) > 10:
            log.error(
                "alerts undeliverable",
                extra={"channel": self.channel.value, "reason": reason, "more": len(alerts) - 10},
            )

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        if self._queue:
            self._wake.set()
        else:
            self._idle.set()
        self._task = asyncio.create_task(self._run(), name=f"discord-{self.channel.value}")

    async def wait_idle(self) -> None:
        if self._idle is not None:
            await self._idle.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        leftovers = list(self._queue)
        self._queue.clear()
        self.drop(leftovers, "shutdown before delivery")

    # -- delivery ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        while True:
            while not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            wait = self.blocked_until - self._clock()
            if wait > 0:
                await self._sleep(wait)
            batch = self._take_batch()
            if not batch:
                continue
            try:
                await self._deliver(batch)
            except asyncio.CancelledError:
                self._queue.extendleft(reversed(batch))  # stop() reports them
                raise
            except Exception as exc:  # a bug here must not kill the channel
                log.exception("discord delivery failed unexpectedly", extra={"channel": self.channel.value})
                self.drop(batch, f"internal error {type(exc).__name__}")

    def _take_batch(self) -> list[Alert]:
        batch: list[Alert] = []
        used = 0
        while self._queue and len(batch) < limits.EMBEDS_LIMIT:
            size = limits.embed_length(limits.clamp_embed(alert_embed(self.channel, self._queue[0], self.origin)))
            if batch and used + size > limits.MESSAGE_TOTAL_LIMIT:
                break
            batch.append(self._queue.popleft())
            used += size
        return batch

    async def _post(self, payload: dict[str, Any]) -> limits.Outcome:
        assert self._client is not None
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            response = await self._client.post(
                self._url,
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": limits.USER_AGENT},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            return limits.Outcome(limits.RETRY, 0.0, type(exc).__name__)
        return limits.classify_response(response.status_code, response.headers, response.content)

    async def _deliver(self, batch: list[Alert]) -> None:
        payload = alerts_message(self.channel, batch, self.origin)
        failures = 0
        waited = 0.0
        fell_back = False
        while True:
            outcome = await self._post(payload)
            if outcome.kind == limits.DELIVERED:
                self.delivered += len(batch)
                self.metrics.incr("DiscordMessagesSent", channel=self.channel.value)
                self.metrics.incr("DiscordAlertsSent", len(batch), channel=self.channel.value)
                if outcome.delay > 0:
                    self.blocked_until = self._clock() + outcome.delay
                return
            if outcome.kind == limits.RATE_LIMITED:
                self.metrics.incr("DiscordRateLimited", channel=self.channel.value)
                waited += outcome.delay
                if waited > self.max_rate_limit_wait:
                    self.drop(batch, f"rate limited for more than {self.max_rate_limit_wait:g} s")
                    return
                self.blocked_until = self._clock() + outcome.delay
                await self._sleep(outcome.delay)
                continue
            if outcome.kind == limits.RETRY:
                failures += 1
                if failures >= self.max_attempts:
                    self.drop(batch, f"gave up after {failures} attempts: {outcome.detail}")
                    return
                self.metrics.incr("DiscordRetries", channel=self.channel.value)
                delay = limits.backoff_delay(
                    failures, base=self.backoff_base, cap=self.backoff_cap, jitter=random.random()
                )
                await self._sleep(delay)
                continue
            if outcome.kind == limits.DISABLED:
                self.disabled = True
                self.metrics.incr("DiscordWebhookDisabled", channel=self.channel.value)
                log.error(
                    "discord webhook disabled: Discord says it does not exist",
                    extra={"channel": self.channel.value, "status": outcome.detail.split(" ", 1)[0]},
                )
                leftovers = list(self._queue)
                self._queue.clear()
                self.drop(batch + leftovers, f"webhook disabled ({outcome.detail[:80]})")
                if self._on_disabled is not None:
                    self._on_disabled(self.channel, outcome.detail.split(" ", 1)[0])
                return
            # Rejected (400 and other 4xx): the embeds should never cause this, but a plain
            # text rendition is worth one try before the alert is given up.
            if not fell_back:
                log.warning(
                    "discord rejected a message; retrying as plain text",
                    extra={"channel": self.channel.value, "detail": outcome.detail},
                )
                payload = limits.plain_text(payload)
                fell_back = True
                continue
            self.drop(batch, f"rejected by Discord: {outcome.detail}")
            return


class Notifier:
    """The three channels. `send` enqueues and returns; `start` / `aclose` run the workers."""

    def __init__(
        self,
        webhooks: Mapping[Channel, str | None],
        *,
        metrics: Metrics | None = None,
        origin: Origin | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        repeat_window: float = 60.0,
        queue_size: int = 10_000,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.origin = origin or Origin()
        self._clock = clock
        self.grouper = RepeatGrouper(repeat_window)
        self._grouper_lock = threading.Lock()
        self._senders: dict[Channel, WebhookSender] = {}
        for channel in Channel:
            url = webhooks.get(channel)
            if url:
                self._senders[channel] = WebhookSender(
                    channel,
                    url,
                    origin=self.origin,
                    metrics=self.metrics,
                    timeout=timeout,
                    max_attempts=max_attempts,
                    queue_size=queue_size,
                    backoff_base=backoff_base,
                    backoff_cap=backoff_cap,
                    sleep=sleep,
                    clock=clock,
                    on_disabled=self._report_disabled,
                )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._client: httpx.AsyncClient | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics, *, service: str = "api") -> Notifier:
        return cls(
            {channel: settings.secret_value(channel.setting) for channel in Channel},
            metrics=metrics,
            origin=Origin(service=service, environment=settings.env.value, release=settings.release),
            timeout=settings.discord_timeout_seconds,
            max_attempts=settings.discord_max_attempts,
            repeat_window=settings.discord_repeat_window_seconds,
            queue_size=settings.discord_queue_size,
        )

    def __repr__(self) -> str:
        return f"Notifier(channels={[c.value for c in self._senders]})"

    def is_configured(self, channel: Channel) -> bool:
        sender = self._senders.get(channel)
        return sender is not None and not sender.disabled

    def sender(self, channel: Channel) -> WebhookSender | None:
        return self._senders.get(channel)

    # -- sending ----------------------------------------------------------------------------------
    def send(self, channel: Channel, alert: Alert) -> None:
        """Queue an alert for a channel. Never blocks, never raises; safe from any thread."""
        try:
            loop = self._loop
            if loop is not None and threading.get_ident() != self._loop_thread and not loop.is_closed():
                loop.call_soon_threadsafe(self._accept, Channel(channel), alert)
                return
            self._accept(Channel(channel), alert)
        except Exception:
            log.exception("notifier could not queue an alert")

    def _accept(self, channel: Channel, alert: Alert) -> None:
        with self._grouper_lock:
            fresh = self.grouper.offer(channel, alert, self._clock())
        if not fresh:
            self.metrics.incr("DiscordAlertsGrouped", channel=channel.value)
            return
        self._route(channel, alert)

    def _route(self, channel: Channel, alert: Alert) -> None:
        sender = self._senders.get(channel)
        if sender is None:
            log.info(
                "alert not sent: no Discord webhook configured for the channel",
                extra={"channel": channel.value, "title": alert.title, "detail": alert.message[:500]},
            )
            return
        if self._closed:
            sender.drop([alert], "notifier closed")
            return
        sender.put(alert)

    def _emit_repeats(self, repeats: list[Repeats]) -> None:
        for item in repeats:
            self._route(item.channel, repeated_alert(item.alert, item.count, self.grouper.window))

    def _report_disabled(self, channel: Channel, status: str) -> None:
        if channel is Channel.ERRORS or not self.is_configured(Channel.ERRORS):
            return
        self.send(
            Channel.ERRORS,
            Alert(
                title=f"Discord webhook for #{channel.value} is gone",
                message=(
                    f"Discord answered {status} for the {channel.value} channel's webhook. Its alerts are "
                    f"dropped until the webhook is replaced ({channel.setting.upper()} / its secret) "
                    "and the service restarts."
                ),
                dedupe_key=f"webhook-disabled:{channel.value}",
            ),
        )

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._client is not None:
            return
        # httpx logs request URLs at INFO; a webhook URL is a credential.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.getEffectiveLevel() < logging.WARNING:
            httpx_log.setLevel(logging.WARNING)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._client = httpx.AsyncClient(follow_redirects=False)
        for sender in self._senders.values():
            sender.start(self._client)
        if self.grouper.window > 0:
            self._ticker = asyncio.create_task(self._tick(), name="discord-repeats")

    async def _tick(self) -> None:
        interval = min(1.0, max(0.02, self.grouper.window / 10))
        while True:
            await asyncio.sleep(interval)
            with self._grouper_lock:
                due = self.grouper.due(self._clock())
            self._emit_repeats(due)

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queue is empty and nothing is in flight; False on timeout."""
        waiters = [s.wait_idle() for s in self._senders.values()]
        if not waiters:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*waiters), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float = 10.0) -> None:
        """Send pending repeat summaries, deliver what is queued (up to `timeout`), stop."""
        if self._closed:
            return
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        with self._grouper_lock:
            pending = self.grouper.drain()
        self._emit_repeats(pending)
        if self._client is not None:
            await self.flush(timeout)
        self._closed = True
        for sender in self._senders.values():
            await sender.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None
