"""One metrics interface for all of Sage.

Domain code calls `metrics.incr / gauge / observe` with a metric name and a few
dimensions. Sinks export what is recorded: CloudWatch Embedded Metric Format lines on
stdout in production (sage.observability.emf) and a Prometheus endpoint locally
(sage.observability.prometheus). The in-memory registry here is what tests read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

Dimensions = tuple[tuple[str, str], ...]


_DIMS_MEMO: dict[tuple[tuple[str, str], ...], Dimensions] = {}
_DIMS_MEMO_LIMIT = 4096  # distinct dimension sets are few (routes x methods); the bound is a guard


def _dims(values: dict[str, str]) -> Dimensions:
    """The sorted, stringified dimensions; memoised, because every request records the same
    few sets (route, method) and sorting them each time was a visible share of a request."""
    key = tuple(values.items())
    dims = _DIMS_MEMO.get(key)
    if dims is None:
        dims = tuple(sorted((k, str(v)) for k, v in values.items()))
        if len(_DIMS_MEMO) < _DIMS_MEMO_LIMIT:
            _DIMS_MEMO[key] = dims
    return dims


class MetricSink(Protocol):
    def record(self, kind: str, name: str, value: float, unit: str, dimensions: Dimensions) -> None: ...


@dataclass
class Series:
    kind: str  # counter | gauge | histogram
    unit: str
    value: float = 0.0
    samples: list[float] = field(default_factory=list)


class Metrics:
    """Thread-safe registry plus fan-out to sinks. Recording never raises."""

    MAX_SAMPLES = 2048  # per histogram series kept for quantiles in tests and /metrics

    def __init__(self, sinks: Iterable[MetricSink] = ()) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, Dimensions], Series] = {}
        self.sinks: list[MetricSink] = list(sinks)

    def add_sink(self, sink: MetricSink) -> None:
        self.sinks.append(sink)

    def _emit(self, kind: str, name: str, value: float, unit: str, dims: Dimensions) -> None:
        for sink in self.sinks:
            try:
                sink.record(kind, name, value, unit, dims)
            except Exception:  # noqa: S110 - a broken exporter must never break a request
                pass

    def incr(self, name: str, value: float = 1.0, *, unit: str = "Count", **dimensions: str) -> None:
        dims = _dims(dimensions)
        with self._lock:
            series = self._series.get((name, dims))
            if series is None:  # not setdefault: that would build a Series on every call
                series = self._series[(name, dims)] = Series("counter", unit)
            series.value += value
        self._emit("counter", name, value, unit, dims)

    def gauge(self, name: str, value: float, *, unit: str = "None", **dimensions: str) -> None:
        dims = _dims(dimensions)
        with self._lock:
            series = self._series.get((name, dims))
            if series is None:  # not setdefault: that would build a Series on every call
                series = self._series[(name, dims)] = Series("gauge", unit)
            series.value = value
        self._emit("gauge", name, value, unit, dims)

    def observe(self, name: str, value: float, *, unit: str = "Milliseconds", **dimensions: str) -> None:
        dims = _dims(dimensions)
        with self._lock:
            series = self._series.get((name, dims))
            if series is None:  # not setdefault: that would build a Series on every call
                series = self._series[(name, dims)] = Series("histogram", unit)
            series.value += 1
            series.samples.append(value)
            if len(series.samples) > self.MAX_SAMPLES:
                del series.samples[: len(series.samples) - self.MAX_SAMPLES]
        self._emit("histogram", name, value, unit, dims)

    # -- reading (tests, /metrics, alert rules) ------------------------------------------------
    def value(self, name: str, **dimensions: str) -> float:
        """Counter total / gauge value / histogram count, summed over series matching the dims."""
        wanted = set(_dims(dimensions))
        with self._lock:
            return sum(s.value for (n, d), s in self._series.items() if n == name and wanted <= set(d))

    def samples(self, name: str, **dimensions: str) -> list[float]:
        wanted = set(_dims(dimensions))
        with self._lock:
            out: list[float] = []
            for (n, d), s in self._series.items():
                if n == name and wanted <= set(d):
                    out.extend(s.samples)
            return out

    def snapshot(self) -> dict[tuple[str, Dimensions], Series]:
        with self._lock:
            return {k: Series(v.kind, v.unit, v.value, list(v.samples)) for k, v in self._series.items()}


def quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


_default = Metrics()


def default_metrics() -> Metrics:
    """The process-wide registry (the app's is passed explicitly; this serves CLI tools)."""
    return _default
