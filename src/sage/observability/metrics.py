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

    def _record(self, kind: str, name: str, value: float, unit: str, dims: Dimensions) -> Series:
        """Add `value` to the series (created on first use; its kind and unit are the first
        recording's) and fan it out to the sinks. Returns the series for `BoundMetric`."""
        with self._lock:
            series = self._series.get((name, dims))
            if series is None:  # not setdefault: that would build a Series on every call
                series = self._series[(name, dims)] = Series(kind, unit)
            self._add(series, kind, value)
        self._emit(kind, name, value, unit, dims)
        return series

    def _add(self, series: Series, kind: str, value: float) -> None:
        if kind == "counter":
            series.value += value
        elif kind == "gauge":
            series.value = value
        else:
            series.value += 1
            samples = series.samples
            samples.append(value)
            # Trimmed in batches (readers see the last MAX_SAMPLES): trimming one sample per
            # call moved the whole list on every observation once it was full.
            if len(samples) >= 2 * self.MAX_SAMPLES:
                del samples[: len(samples) - self.MAX_SAMPLES]

    def incr(self, name: str, value: float = 1.0, *, unit: str = "Count", **dimensions: str) -> None:
        self._record("counter", name, value, unit, _dims(dimensions))

    def gauge(self, name: str, value: float, *, unit: str = "None", **dimensions: str) -> None:
        self._record("gauge", name, value, unit, _dims(dimensions))

    def observe(self, name: str, value: float, *, unit: str = "Milliseconds", **dimensions: str) -> None:
        self._record("histogram", name, value, unit, _dims(dimensions))

    def bind(self, kind: str, name: str, *, unit: str, **dimensions: str) -> BoundMetric:
        """One series resolved once, for a hot path that records the same name and dimensions
        on every call (the request middleware: per route). Recording through it is
        `incr` / `gauge` / `observe` (by `kind`: counter, gauge, histogram) without building,
        sorting and looking up the dimensions each time; sinks see the same records."""
        if kind not in ("counter", "gauge", "histogram"):
            raise ValueError(f"unknown metric kind {kind!r}")
        return BoundMetric(self, kind, name, unit, _dims(dimensions))

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
                    out.extend(s.samples[-self.MAX_SAMPLES :])
            return out

    def snapshot(self) -> dict[tuple[str, Dimensions], Series]:
        with self._lock:
            return {k: Series(v.kind, v.unit, v.value, v.samples[-self.MAX_SAMPLES :]) for k, v in self._series.items()}


class BoundMetric:
    """A series of one `Metrics` with its name, kind, unit and dimensions fixed (`Metrics.bind`)."""

    __slots__ = ("_metrics", "_series", "dimensions", "kind", "name", "unit")

    def __init__(self, metrics: Metrics, kind: str, name: str, unit: str, dimensions: Dimensions) -> None:
        self._metrics = metrics
        self._series: Series | None = None  # resolved on the first record, so unused ones stay absent
        self.kind = kind
        self.name = name
        self.unit = unit
        self.dimensions = dimensions

    def record(self, value: float = 1.0) -> None:
        """Count `value` (counter), set it (gauge) or observe it (histogram)."""
        series = self._series
        metrics = self._metrics
        if series is None:
            self._series = metrics._record(self.kind, self.name, value, self.unit, self.dimensions)
            return
        with metrics._lock:
            metrics._add(series, self.kind, value)
        metrics._emit(self.kind, self.name, value, self.unit, self.dimensions)


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
