"""Observability services: the notifier and active users (started first, so every other
domain can be given the notifier, and, as the exit stack unwinds in reverse, closed last so
alerts raised while the other domains shut down are still delivered), and the rule runner
(gauge samplers, the alert rules, the daily business summary), started last because its
summary reads the other domains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date

from sage.notify import Alert, Channel, Notifier
from sage.observability.active_users import ActiveUsers
from sage.observability.alerts import EngineState, Rule, default_rules, evaluate, transition_alert
from sage.observability.business import DailySummary, MarketDigest, SummarySource
from sage.observability.emf import EmfSink
from sage.observability.metrics import Metrics
from sage.observability.samplers import sample_db_pool, sample_valkey_memory
from sage.observability.sentry import enable_asyncio
from sage.settings import Settings
from sage.store.cache import Cache, CacheUnavailable
from sage.store.db import Database

log = logging.getLogger(__name__)

NOTIFIER_CLOSE_TIMEOUT = 10.0
DAU_REFRESH_SECONDS = 300.0


def task_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class AlertRuleRunner:
    """Samples gauges, evaluates the rules and feeds the business channel, every interval."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        cache: Cache,
        metrics: Metrics,
        notifier: Notifier,
        active_users: ActiveUsers,
        *,
        task: str,
    ) -> None:
        self.db = db
        self.cache = cache
        self.metrics = metrics
        self.notifier = notifier
        self.task = task
        self.interval = settings.alert_eval_seconds
        self.enabled = settings.alerts_enabled
        self.rules: list[Rule] = default_rules(settings) if self.enabled else []
        self.state = EngineState()
        self.summary = DailySummary(
            cache,
            task=task,
            hour=settings.alert_daily_summary_hour,
            delay=max(60.0, 3 * self.interval),  # every task has written its final totals by then
            count_active=active_users.count,
            send=lambda alert: notifier.send(Channel.BUSINESS, alert),
        )
        digest_seconds = settings.alert_market_digest_seconds
        self.digest = MarketDigest(digest_seconds) if digest_seconds > 0 else None
        self.active_users = active_users
        self._last_dau_refresh = 0.0
        self._stopping = asyncio.Event()
        self._tick_lock = asyncio.Lock()

    def add_summary_source(self, name: str, source: SummarySource) -> None:
        self.summary.add_source(name, source)

    async def tick(self, now: float | None = None) -> None:
        """One evaluation. Serialised: the windows assume ticks arrive in time order."""
        async with self._tick_lock:
            await self._tick(now)

    async def _tick(self, at: float | None) -> None:
        metrics = self.metrics
        sample_db_pool(self.db, metrics)
        await sample_valkey_memory(self.cache, metrics)
        started = time.time() if at is None else at
        if started - self._last_dau_refresh >= DAU_REFRESH_SECONDS:  # a SCAN: not every tick
            self._last_dau_refresh = started
            metrics.gauge("DailyActiveUsers", await self.active_users.count(), unit="Count")
        now = time.time() if at is None else at  # after the awaits: the snapshot is taken now
        snapshot = metrics.snapshot()
        self.state, transitions = evaluate(self.rules, self.state, snapshot, now)
        for transition in transitions:
            kind = "fired" if transition.fired else "resolved"
            log.warning(
                "alert rule %s",
                kind,
                extra={"rule": transition.rule.key, "value": transition.reading.value},
            )
            if transition.rule.scope == "cluster" and not await self._first_in_cluster(transition.rule.key, kind):
                continue
            self.notifier.send(transition.rule.channel, transition_alert(transition, task=self.task))
        if self.enabled:
            digest = self.digest.update(snapshot, now) if self.digest is not None else None
            if digest is not None:
                self.notifier.send(Channel.BUSINESS, digest)
            await self.summary.tick(snapshot, now)

    async def _first_in_cluster(self, rule: str, kind: str) -> bool:
        """A shared resource is seen by every task: only the first to notice announces it."""
        cache = self.cache
        try:
            return await cache.backend.set(
                cache.key("alerts", "gate", rule, kind), self.task.encode(), max(60.0, 4 * self.interval), nx=True
            )
        except CacheUnavailable as exc:
            cache.report_failure("alert-gate", exc)
            return True  # a duplicate beats a missed alert

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("alert evaluation failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def stop(self, task: asyncio.Task[None]) -> None:
        # Database and cache clients may swallow a cancellation that lands mid-call; the
        # event ends the loop regardless, and the wait is bounded either way.
        self._stopping.set()
        task.cancel()
        await asyncio.wait({task}, timeout=5)


def milestone_alert(count: int, day: date) -> Alert:
    return Alert(
        title=f"Daily active users milestone: {count:,}",
        message=f"{count:,} different users have been active on {day.isoformat()} (UTC).",
        fields={"Daily active users": f"{count:,}"},
        dedupe_key=f"dau-milestone:{day.isoformat()}:{count}",
    )


@dataclass(frozen=True)
class Observability:
    notifier: Notifier
    active_users: ActiveUsers


async def start_observability(
    settings: Settings, cache: Cache, metrics: Metrics, stack: AsyncExitStack
) -> Observability:
    enable_asyncio()
    for sink in metrics.sinks:
        if isinstance(sink, EmfSink):
            stack.callback(sink.flush)
    notifier = Notifier.from_settings(settings, metrics)
    await notifier.start()
    stack.push_async_callback(notifier.aclose, NOTIFIER_CLOSE_TIMEOUT)
    active_users = ActiveUsers(
        cache,
        metrics,
        milestones=settings.alert_dau_milestones if settings.alerts_enabled else (),
        on_milestone=lambda count, day: notifier.send(Channel.BUSINESS, milestone_alert(count, day)),
    )
    stack.push_async_callback(active_users.drain)
    return Observability(notifier=notifier, active_users=active_users)


def start_alert_rules(
    settings: Settings,
    db: Database,
    cache: Cache,
    metrics: Metrics,
    observability: Observability,
    summary_sources: dict[str, SummarySource],
    stack: AsyncExitStack,
) -> AlertRuleRunner:
    runner = AlertRuleRunner(
        settings, db, cache, metrics, observability.notifier, observability.active_users, task=task_id()
    )
    for name, source in summary_sources.items():
        runner.add_summary_source(name, source)
    task = asyncio.create_task(runner.run(), name="alert-rules")
    stack.push_async_callback(runner.stop, task)
    return runner
