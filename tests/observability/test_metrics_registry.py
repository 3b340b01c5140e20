"""The in-memory metrics registry: bound series and the histogram sample window."""

from __future__ import annotations

import pytest

from sage.observability.metrics import Dimensions, Metrics


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, float, str, Dimensions]] = []

    def record(self, kind: str, name: str, value: float, unit: str, dimensions: Dimensions) -> None:
        self.records.append((kind, name, value, unit, dimensions))


def test_a_bound_series_records_what_the_keyword_calls_record() -> None:
    by_call, by_bound = RecordingSink(), RecordingSink()
    called, bound = Metrics([by_call]), Metrics([by_bound])
    called.incr("Requests", route="/x")
    called.incr("Requests", 2, route="/x")
    called.observe("RequestLatency", 3.5, route="/x", method="GET")
    called.gauge("Open", 7, unit="Count", pool="a")
    requests = bound.bind("counter", "Requests", unit="Count", route="/x")
    requests.record()
    requests.record(2)
    bound.bind("histogram", "RequestLatency", unit="Milliseconds", method="GET", route="/x").record(3.5)
    bound.bind("gauge", "Open", unit="Count", pool="a").record(7)
    assert by_bound.records == by_call.records
    assert {k: (s.kind, s.unit, s.value, s.samples) for k, s in bound.snapshot().items()} == {
        k: (s.kind, s.unit, s.value, s.samples) for k, s in called.snapshot().items()
    }
    assert bound.value("Requests", route="/x") == 3
    assert bound.samples("RequestLatency", route="/x") == [3.5]


def test_a_bound_series_appears_only_once_it_records() -> None:
    metrics = Metrics()
    errors = metrics.bind("counter", "Http5xx", unit="Count", route="/x")
    assert metrics.snapshot() == {}
    errors.record()
    assert metrics.value("Http5xx", route="/x") == 1


def test_binding_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Metrics().bind("summary", "Latency", unit="Milliseconds")


def test_readers_see_the_latest_max_samples_of_a_histogram() -> None:
    metrics = Metrics()
    count = 3 * Metrics.MAX_SAMPLES + 5
    for value in range(count):
        metrics.observe("Latency", float(value), route="/x")
    expected = [float(v) for v in range(count - Metrics.MAX_SAMPLES, count)]
    assert metrics.samples("Latency", route="/x") == expected
    assert next(iter(metrics.snapshot().values())).samples == expected
    assert metrics.value("Latency", route="/x") == count
