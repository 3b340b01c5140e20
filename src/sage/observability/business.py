"""The business channel: the daily summary and the market-alert digest.

Daily summary (spec 9.3, sent once per UTC day by one task, at SAGE_ALERT_DAILY_SUMMARY_HOUR):
daily active users, chats answered, tokens used by kind, market alerts sent, unverified
answers, shadow portfolio performance, plus any fields other domains contribute through
`add_source`. Counters are per process, so each task writes its running totals for the
day to the cache and the summary adds them up (a restarted task simply adds a new entry).

Market-alert digest: alerts fired (MarketAlertsSent) and notifications delivered or failed per
channel are collected and posted at most once per SAGE_ALERT_MARKET_DIGEST_SECONDS, so a burst
of alerts is one message, not fifty.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from sage.notify.channels import Alert
from sage.observability.metrics import Dimensions
from sage.observability.windows import Snapshot
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

KEEP_SECONDS = 3 * 24 * 3600
DAY_COUNTERS = ("TokensUsed", "MarketAlertsSent", "GroundingEvaluated", "GroundingUnverified")
DAY_OBSERVATION_COUNTS = ("ChatTotalLatency",)  # one observation per chat answer
DAY_GAUGES = ("ShadowPortfolios", "ShadowPortfolioReturn")

SummarySource = Callable[[date], Awaitable[Mapping[str, str]]]


def series_label(name: str, dims: Dimensions) -> str:
    return name + "".join(f"|{k}={v}" for k, v in dims)


def day_of(now: float) -> date:
    return datetime.fromtimestamp(now, UTC).date()


class DayTotals:
    """This process's counter growth since the start of the current UTC day (pure)."""

    def __init__(self) -> None:
        self.day: date | None = None
        self._baseline: dict[str, float] = {}
        self._last: dict[str, float] = {}

    @staticmethod
    def cumulative(snapshot: Snapshot) -> dict[str, float]:
        out: dict[str, float] = {}
        for (name, dims), series in snapshot.items():
            if name in DAY_COUNTERS or name in DAY_OBSERVATION_COUNTS:
                out[series_label(name, dims)] = series.value
        return out

    def update(self, snapshot: Snapshot, now: float) -> dict[str, float]:
        day = day_of(now)
        totals = self.cumulative(snapshot)
        if self.day is None:
            self.day = day
        elif day != self.day:
            # Growth between the last tick of yesterday and now is counted for today.
            self.day = day
            self._baseline = dict(self._last)
        self._last = totals
        return {k: v - self._baseline.get(k, 0.0) for k, v in totals.items() if v - self._baseline.get(k, 0.0) > 0}


def gauges_of(snapshot: Snapshot) -> dict[str, float]:
    return {series_label(n, d): s.value for (n, d), s in snapshot.items() if n in DAY_GAUGES}


def summary_due(now: float, hour: int, delay: float, last_sent: date | None) -> date | None:
    """The day whose summary is due at `now`, if any: yesterday, once `hour`:00 UTC (+ delay) passed."""
    current = datetime.fromtimestamp(now, UTC)
    yesterday = current.date() - timedelta(days=1)
    due_at = datetime(current.year, current.month, current.day, hour, tzinfo=UTC) + timedelta(seconds=delay)
    if current >= due_at and last_sent != yesterday:
        return yesterday
    return None


def _sum_by(counters: Mapping[str, float], name: str) -> dict[str, float]:
    """Totals of one metric by its dimension values ("" when it has none)."""
    out: dict[str, float] = {}
    for label, value in counters.items():
        head, _, dims = label.partition("|")
        if head == name:
            key = ",".join(part.split("=", 1)[-1] for part in dims.split("|") if part)
            out[key] = out.get(key, 0.0) + value
    return out


def human(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:g}"


def summary_fields(
    day: date, active_users: int, counters: Mapping[str, float], gauges: Mapping[str, float]
) -> dict[str, str]:
    tokens = _sum_by(counters, "TokensUsed")
    chats = sum(_sum_by(counters, "ChatTotalLatency").values())
    alerts = sum(_sum_by(counters, "MarketAlertsSent").values())
    evaluated = sum(_sum_by(counters, "GroundingEvaluated").values())
    unverified = sum(_sum_by(counters, "GroundingUnverified").values())
    fields = {
        "Daily active users": f"{active_users:,}",
        "Chats answered": f"{chats:,.0f}",
        "Tokens used": " · ".join(f"{k or 'total'} {human(v)}" for k, v in sorted(tokens.items())) or "0",
        "Market alerts sent": f"{alerts:,.0f}",
    }
    if evaluated:
        fields["Unverified answers"] = f"{unverified:,.0f} of {evaluated:,.0f} ({unverified / evaluated * 100:.2f} %)"
    portfolios = sum(_sum_by(gauges, "ShadowPortfolios").values()) if gauges else 0
    returns = list(_sum_by(gauges, "ShadowPortfolioReturn").values())
    if portfolios or returns:
        average = f" · average return {sum(returns) / len(returns):+.2f} %" if returns else ""
        fields["Shadow portfolios"] = f"{portfolios:,.0f}{average}"
    else:
        fields["Shadow portfolios"] = "no data reported"
    return fields


class DailySummary:
    """Writes this task's day totals to the cache; sends the summary once per day (one task)."""

    def __init__(
        self,
        cache: Cache,
        *,
        task: str,
        hour: int,
        delay: float,
        count_active: Callable[[date], Awaitable[int]],
        send: Callable[[Alert], None],
    ) -> None:
        self.cache = cache
        self.task = task
        self.hour = hour
        self.delay = delay
        self.count_active = count_active
        self.send = send
        self.totals = DayTotals()
        self.sources: dict[str, SummarySource] = {}
        self.last_sent: date | None = None

    def add_source(self, name: str, source: SummarySource) -> None:
        """Let another domain add fields (e.g. the portfolio service's performance)."""
        self.sources[name] = source

    def _task_key(self, day: date, task: str) -> str:
        return self.cache.key("daily", day.isoformat(), "task", task)

    async def tick(self, snapshot: Snapshot, now: float) -> None:
        counters = self.totals.update(snapshot, now)
        blob = {"counters": counters, "gauges": gauges_of(snapshot), "at": now}
        assert self.totals.day is not None
        await self.cache.set_json(self._task_key(self.totals.day, self.task), blob, KEEP_SECONDS)
        day = summary_due(now, self.hour, self.delay, self.last_sent)
        if day is not None:
            await self._maybe_send(day)

    async def _maybe_send(self, day: date) -> None:
        try:
            mine = await self.cache.backend.set(
                self.cache.key("alerts", "daily-summary", day.isoformat()), self.task.encode(), KEEP_SECONDS, nx=True
            )
        except CacheUnavailable as exc:
            self.cache.report_failure("daily-summary", exc)
            return  # retried on the next tick
        self.last_sent = day
        if mine:
            self.send(await self.build(day))

    async def collect(self, day: date) -> tuple[dict[str, float], dict[str, float]]:
        counters: dict[str, float] = {}
        latest: dict[str, tuple[float, float]] = {}
        try:
            keys = await self.cache.backend.keys(self._task_key(day, "*"))
            blobs = await self.cache.backend.get_many(keys)
        except CacheUnavailable as exc:
            self.cache.report_failure("daily-summary", exc)
            return {}, {}
        for raw in blobs:
            if raw is None:
                continue
            data: dict[str, Any] = orjson.loads(raw)
            for label, value in data.get("counters", {}).items():
                counters[label] = counters.get(label, 0.0) + float(value)
            for label, value in data.get("gauges", {}).items():
                at = float(data.get("at", 0))
                if label not in latest or latest[label][0] < at:
                    latest[label] = (at, float(value))
        return counters, {label: value for label, (_, value) in latest.items()}

    async def build(self, day: date) -> Alert:
        counters, gauges = await self.collect(day)
        fields = summary_fields(day, await self.count_active(day), counters, gauges)
        for name, source in self.sources.items():
            try:
                fields.update(await source(day))
            except Exception:
                log.exception("daily summary source failed", extra={"source": name})
        return Alert(
            title=f"Daily summary for {day.isoformat()}",
            message=f"Sage on {day.isoformat()} (UTC day).",
            fields=fields,
            dedupe_key=f"daily-summary:{day.isoformat()}",
        )


CHANNEL_NAMES = {"in_app": "in app", "email": "email", "web_push": "web push"}
DIGEST_COUNTERS = {
    "MarketAlertsSent": "Alerts fired",
    "NotificationsDelivered": "Delivered",
    "NotificationsFailed": "Failed",
}


class MarketDigest:
    """Alerts fired and notifications delivered / failed per channel, posted at most once per
    period (pure; caller's clock). One message for a burst, never one per user alert."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._last: dict[tuple[str, Dimensions], float] = {}
        self._pending: dict[str, float] = {}
        self._opened: float | None = None

    def update(self, snapshot: Snapshot, now: float) -> Alert | None:
        for (name, dims), series in snapshot.items():
            heading = DIGEST_COUNTERS.get(name)
            if heading is None:
                continue
            before = self._last.get((name, dims), 0.0)
            grown = series.value - before if series.value >= before else series.value
            self._last[(name, dims)] = series.value
            if grown > 0:
                channel = dict(dims).get("channel")
                label = f"{heading} ({CHANNEL_NAMES.get(channel, channel)})" if channel else heading
                self._pending[label] = self._pending.get(label, 0.0) + grown
                if self._opened is None:
                    self._opened = now
        if self._opened is None or now - self._opened < self.period:
            return None
        pending, self._pending, self._opened = self._pending, {}, None
        fired = pending.get(DIGEST_COUNTERS["MarketAlertsSent"], 0.0)
        minutes = f"{self.period / 60:g} min"
        return Alert(
            title=f"Market alerts fired: {fired:,.0f}",
            message=f"{fired:,.0f} market alerts fired for users in the last {minutes}; deliveries per channel below.",
            fields={label: f"{count:,.0f}" for label, count in sorted(pending.items())},
            dedupe_key=None,
        )
