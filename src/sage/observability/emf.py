"""CloudWatch Embedded Metric Format: metrics as JSON lines on stdout.

On Fargate the awslogs driver ships stdout to CloudWatch Logs, which extracts the metrics
from any line carrying an `_aws` block: no agent, no PutMetricData calls. Observations
are aggregated and written once per flush interval, one line per set of dimension values:
counters as a sum, gauges as the last value, histograms as the list of values (at most
100 per line, the EMF limit, so a hot path writes a line per 100 observations, not one per
observation). CloudWatch computes percentiles from those values.

Every metric is published under the dimension set [service, environment] and, when it
has dimensions of its own, also under [service, environment, <its dimensions>], so an
alarm can watch the aggregate (e.g. RequestLatency p95 of the whole API) as well as one
route.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from sage.observability.metrics import Dimensions

NAMESPACE = "Sage"
MAX_VALUES = 100  # values per metric per line (EMF)
MAX_METRICS = 100  # metrics per directive (EMF)
MAX_DIMENSIONS = 30  # dimension keys per set (CloudWatch)
BASE_DIMENSIONS = ("service", "environment")

CLOUDWATCH_UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)
_UNIT_ALIASES = {
    "ms": "Milliseconds",
    "millisecond": "Milliseconds",
    "milliseconds": "Milliseconds",
    "s": "Seconds",
    "sec": "Seconds",
    "second": "Seconds",
    "seconds": "Seconds",
    "us": "Microseconds",
    "µs": "Microseconds",
    "microseconds": "Microseconds",
    "%": "Percent",
    "pct": "Percent",
    "percent": "Percent",
    "b": "Bytes",
    "byte": "Bytes",
    "bytes": "Bytes",
    "kb": "Kilobytes",
    "mb": "Megabytes",
    "gb": "Gigabytes",
    "count": "Count",
    "counts": "Count",
    "1": "Count",
    "count/s": "Count/Second",
    "per_second": "Count/Second",
    "none": "None",
    "": "None",
}
_UNITS_BY_LOWER = {unit.lower(): unit for unit in CLOUDWATCH_UNITS}


def cloudwatch_unit(unit: str) -> str:
    """The CloudWatch unit for a unit as callers write it ("ms", "percent", "Count", ...)."""
    lowered = unit.strip().lower()
    return _UNITS_BY_LOWER.get(lowered) or _UNIT_ALIASES.get(lowered, "None")


@dataclass
class _Aggregate:
    kind: str
    unit: str
    total: float = 0.0
    values: list[float] = field(default_factory=list)


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def _stdout_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class EmfSink:
    """A `MetricSink` writing EMF lines. Thread-safe; flushes on an interval from a daemon thread."""

    def __init__(
        self,
        *,
        service: str,
        environment: str,
        namespace: str = NAMESPACE,
        flush_interval: float = 10.0,
        write: Callable[[str], None] = _stdout_line,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.environment = environment
        self.namespace = namespace
        self.flush_interval = flush_interval
        self._write = write
        self._clock = clock
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._groups: dict[Dimensions, dict[str, _Aggregate]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- MetricSink ---------------------------------------------------------------------------
    def record(self, kind: str, name: str, value: float, unit: str, dimensions: Dimensions) -> None:
        value = float(value)
        if not _finite(value):
            return  # CloudWatch rejects NaN / Infinity; one bad value must not drop a whole line
        dims = tuple((k, v or "none") for k, v in dimensions if k not in BASE_DIMENSIONS)[: MAX_DIMENSIONS - 2]
        full: list[str] = []
        with self._lock:
            group = self._groups.setdefault(dims, {})
            agg = group.get(name)
            if agg is None:
                agg = group[name] = _Aggregate(kind, cloudwatch_unit(unit))
            if agg.kind == "counter":
                agg.total += value
            elif agg.kind == "gauge":
                agg.values = [value]
            else:
                agg.values.append(value)
                if len(agg.values) >= MAX_VALUES:
                    full.append(self._line(dims, {name: _Aggregate(agg.kind, agg.unit, values=agg.values)}))
                    del group[name]
        for line in full:
            self._emit(line)

    # -- output -------------------------------------------------------------------------------
    def _line(self, dims: Dimensions, metrics: dict[str, _Aggregate]) -> str:
        dim_keys = [k for k, _ in dims]
        dimension_sets = [list(BASE_DIMENSIONS)]
        if dim_keys:
            dimension_sets.append([*BASE_DIMENSIONS, *dim_keys])
        document: dict[str, object] = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": dimension_sets,
                        "Metrics": [{"Name": name, "Unit": agg.unit} for name, agg in metrics.items()],
                    }
                ],
            },
            "service": self.service,
            "environment": self.environment,
        }
        for key, value in dims:
            document[key] = value
        for name, agg in metrics.items():
            if agg.kind == "counter":
                document[name] = agg.total
            elif agg.kind == "gauge":
                document[name] = agg.values[-1]
            else:
                document[name] = agg.values[0] if len(agg.values) == 1 else agg.values
        return orjson.dumps(document).decode()

    def _emit(self, line: str) -> None:
        with self._write_lock:
            try:
                self._write(line)
            except Exception:  # noqa: S110 - stdout closed at exit; metrics are best effort
                pass

    def flush(self) -> int:
        """Write everything aggregated so far; returns the number of lines written."""
        with self._lock:
            groups, self._groups = self._groups, {}
        lines: list[str] = []
        for dims, metrics in groups.items():
            names = [n for n, a in metrics.items() if a.kind == "counter" or a.values]
            for start in range(0, len(names), MAX_METRICS):
                chunk = {n: metrics[n] for n in names[start : start + MAX_METRICS]}
                lines.append(self._line(dims, chunk))
        for line in lines:
            self._emit(line)
        return len(lines)

    # -- background flushing ------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="emf-flush", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
