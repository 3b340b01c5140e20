"""Prometheus exposition of the same metrics, for local use (`GET /metrics`).

A `MetricSink` that keeps counters, gauges and histogram buckets and a custom collector
in its own `CollectorRegistry` (never the global one, so several apps in one process, as
in the tests, do not collide). Names: `sage_` + snake_case of the metric name + a unit
suffix (`_milliseconds`, `_percent`, `_bytes`, `_seconds`); counters gain `_total`.
Example: RequestLatency -> sage_request_latency_milliseconds_bucket{route,method}.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from sage.observability.emf import cloudwatch_unit
from sage.observability.metrics import Dimensions

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MS_BUCKETS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0)
GENERIC_BUCKETS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 10000.0, 100000.0)
_UNIT_SUFFIX = {"Milliseconds": "milliseconds", "Seconds": "seconds", "Percent": "percent", "Bytes": "bytes"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(name: str, unit: str) -> str:
    snake = _INVALID.sub("_", _CAMEL.sub("_", name)).lower().strip("_") or "unnamed"
    if snake[0].isdigit():
        snake = "_" + snake
    suffix = _UNIT_SUFFIX.get(cloudwatch_unit(unit))
    if suffix and not snake.endswith(suffix):
        snake = f"{snake}_{suffix}"
    return f"sage_{snake}"


def label_name(key: str) -> str:
    label = _INVALID.sub("_", key) or "label"
    if label[0].isdigit() or label.startswith("__"):
        label = "l_" + label
    return label


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class _Family:
    kind: str
    name: str
    help: str
    values: dict[Dimensions, float] = field(default_factory=dict)
    hists: dict[Dimensions, _Histogram] = field(default_factory=dict)


class PrometheusSink:
    """A `MetricSink` plus the collector that renders it."""

    def __init__(self, *, process_metrics: bool = True) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        if process_metrics:
            ProcessCollector(namespace="sage", registry=self.registry)

    def record(self, kind: str, name: str, value: float, unit: str, dimensions: Dimensions) -> None:
        value = float(value)
        if math.isnan(value):
            return
        with self._lock:
            family = self._families.get(name)
            if family is None:
                family = _Family(kind, metric_name(name, unit), f"Sage metric {name} ({cloudwatch_unit(unit)})")
                self._families[name] = family
            if family.kind != kind:
                return  # one name, one type: the first recording decides
            if kind == "counter":
                family.values[dimensions] = family.values.get(dimensions, 0.0) + value
            elif kind == "gauge":
                family.values[dimensions] = value
            else:
                hist = family.hists.get(dimensions)
                if hist is None:
                    buckets = MS_BUCKETS if cloudwatch_unit(unit) == "Milliseconds" else GENERIC_BUCKETS
                    hist = _Histogram(buckets, [0] * (len(buckets) + 1))
                    family.hists[dimensions] = hist
                hist.counts[bisect.bisect_left(hist.buckets, value)] += 1
                hist.total += value
                hist.count += 1

    def families(self) -> Iterator[Metric]:
        with self._lock:
            snapshot: list[tuple[str, str, str, dict[Dimensions, float | _Histogram]]] = [
                (f.kind, f.name, f.help, {**f.values, **{d: _copy(h) for d, h in f.hists.items()}})
                for f in self._families.values()
            ]
        for kind, name, help_text, series in snapshot:
            keys = sorted({k for dims in series for k, _ in dims})
            labels = [label_name(k) for k in keys]
            if kind == "histogram":
                histogram = HistogramMetricFamily(name, help_text, labels=labels)
                for dims, data in series.items():
                    if isinstance(data, _Histogram):
                        histogram.add_metric(_label_values(dims, keys), _cumulative(data), data.total)
                yield histogram
                continue
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, help_text, labels=labels)
            for dims, data in series.items():
                if not isinstance(data, _Histogram):
                    family.add_metric(_label_values(dims, keys), data)
            yield family

    def render(self) -> bytes:
        return generate_latest(self.registry)  # type: ignore[no-any-return]


def _label_values(dims: Dimensions, keys: list[str]) -> list[str]:
    values = dict(dims)
    return [values.get(k, "") for k in keys]


def _cumulative(hist: _Histogram) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*hist.buckets, math.inf), hist.counts, strict=True):
        running += count
        out.append(("+Inf" if math.isinf(bound) else repr(bound), running))
    return out


def _copy(hist: _Histogram) -> _Histogram:
    return _Histogram(hist.buckets, list(hist.counts), hist.total, hist.count)


class _Collector:
    def __init__(self, sink: PrometheusSink) -> None:
        self._sink = sink

    def collect(self) -> Iterator[Metric]:
        return self._sink.families()

    def describe(self) -> list[Metric]:
        return []
