"""Time windows over the metrics registry, as immutable values.

The registry keeps totals and the latest samples, not history. Each evaluation turns one
snapshot into a `Tick` (what changed since the previous snapshot: counter increases,
new histogram observations, current gauges) and the `History` keeps the ticks of the
longest window a rule needs. Everything is a pure function of (history, snapshot, now),
so the alert rules are tested without sleeping.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sage.observability.metrics import Dimensions, Series

Snapshot = Mapping[tuple[str, Dimensions], Series]
SeriesFilter = Callable[[str, Dimensions], bool]

MAX_SAMPLES_PER_TICK = 2000  # per metric name; a stride keeps the distribution's shape

# Monitoring traffic says nothing about API latency, and unmatched paths (scanners) would
# dilute both the error rate and the P95. (Server-Sent Events responses are recorded as
# StreamDuration by the middleware, never as RequestLatency, so they need no entry.) An
# entry is a route-template glob, optionally preceded by a method; a method-qualified entry
# only excludes series that carry that method (RequestLatency), not the per-route counters.
EXCLUDED_ROUTES = (
    "/health*",
    "/metrics",
    "unmatched",
)


def route_filter(patterns: tuple[str, ...] = EXCLUDED_ROUTES) -> SeriesFilter:
    rules = [(p.split(" ", 1)[0].upper(), p.split(" ", 1)[1]) if " " in p else (None, p) for p in patterns]

    def include(name: str, dims: Dimensions) -> bool:
        values = dict(dims)
        route = values.get("route")
        if route is None:
            return True
        method = values.get("method", "").upper()
        return not any(
            fnmatch.fnmatchcase(route, glob) and (wanted is None or wanted == method) for wanted, glob in rules
        )

    return include


@dataclass(frozen=True)
class Tick:
    at: float
    increases: Mapping[str, float]  # counters and histogram counts: growth since the previous tick
    samples: Mapping[str, tuple[float, ...]]  # histogram observations since the previous tick
    gauges: Mapping[tuple[str, Dimensions], float]  # current value of each gauge series


def _stride(values: list[float], limit: int) -> tuple[float, ...]:
    if len(values) <= limit:
        return tuple(values)
    step = len(values) / limit
    return tuple(values[int(i * step)] for i in range(limit))


@dataclass(frozen=True)
class History:
    ticks: tuple[Tick, ...] = ()
    totals: Mapping[tuple[str, Dimensions], float] = field(default_factory=dict)

    def advance(
        self, snapshot: Snapshot, now: float, *, keep_seconds: float, include: SeriesFilter | None = None
    ) -> History:
        increases: dict[str, float] = {}
        samples: dict[str, list[float]] = {}
        gauges: dict[tuple[str, Dimensions], float] = {}
        totals: dict[tuple[str, Dimensions], float] = {}
        for key, series in snapshot.items():
            name, dims = key
            if include is not None and not include(name, dims):
                continue
            if series.kind == "gauge":
                gauges[key] = series.value
                continue
            totals[key] = series.value
            before = self.totals.get(key, 0.0)
            grown = series.value - before if series.value >= before else series.value  # a reset restarts
            if grown <= 0:
                continue
            increases[name] = increases.get(name, 0.0) + grown
            if series.kind == "histogram" and series.samples:
                fresh = series.samples[-min(round(grown), len(series.samples)) :]
                samples.setdefault(name, []).extend(fresh)
        tick = Tick(
            at=now,
            increases=increases,
            samples={n: _stride(v, MAX_SAMPLES_PER_TICK) for n, v in samples.items()},
            gauges=gauges,
        )
        kept = (*(t for t in self.ticks if t.at > now - keep_seconds), tick)
        return History(ticks=kept, totals=totals)

    def _within(self, now: float, seconds: float) -> list[Tick]:
        return [t for t in self.ticks if now - seconds < t.at <= now]

    def increase(self, name: str, now: float, seconds: float) -> float:
        """Counter growth (or histogram observation count) over the trailing window."""
        return sum(t.increases.get(name, 0.0) for t in self._within(now, seconds))

    def observations(self, name: str, now: float, seconds: float) -> list[float]:
        out: list[float] = []
        for tick in self._within(now, seconds):
            out.extend(tick.samples.get(name, ()))
        return out

    def gauge(self, name: str, **dimensions: str) -> float | None:
        """The highest value, at the latest tick, of the gauge's series that carry `dimensions`
        (None when no such series was ever set)."""
        if not self.ticks:
            return None
        wanted = set(dimensions.items())
        values = [v for (n, d), v in self.ticks[-1].gauges.items() if n == name and wanted <= set(d)]
        return max(values) if values else None
