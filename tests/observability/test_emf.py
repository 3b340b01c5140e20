"""CloudWatch EMF lines: valid JSON, the declared metrics, batched per flush."""

from __future__ import annotations

import json
import subprocess
import sys

from sage.observability.emf import EmfSink, cloudwatch_unit
from sage.observability.metrics import Metrics


def make() -> tuple[Metrics, EmfSink, list[str]]:
    lines: list[str] = []
    sink = EmfSink(service="api", environment="production", write=lines.append, clock=lambda: 1_700_000_000.0)
    return Metrics([sink]), sink, lines


def documents(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


def declared(doc: dict) -> dict[str, str]:
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    return {m["Name"]: m["Unit"] for m in directive["Metrics"]}


def check_emf(doc: dict) -> None:
    """What CloudWatch requires of an EMF document."""
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int)
    for directive in aws["CloudWatchMetrics"]:
        assert directive["Namespace"] == "Sage"
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(doc[key], str) and doc[key]
        assert len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            value = doc[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100
            assert all(isinstance(v, int | float) for v in values)


def test_nothing_is_written_until_a_flush():
    metrics, _, lines = make()
    metrics.incr("Requests", route="/a")
    assert lines == []


def test_a_flush_writes_one_line_per_dimension_set_with_every_metric_declared():
    metrics, sink, lines = make()
    for _ in range(3):
        metrics.incr("Requests", route="/api/v1/x")
    metrics.observe("RequestLatency", 12.5, route="/api/v1/x", method="GET")
    metrics.observe("RequestLatency", 30.0, route="/api/v1/x", method="GET")
    metrics.gauge("DBPoolUsage", 40, unit="Percent")
    metrics.gauge("DBPoolUsage", 60, unit="Percent")
    assert sink.flush() == 3
    docs = documents(lines)
    for doc in docs:
        check_emf(doc)
    by_metric = {name: doc for doc in docs for name in declared(doc)}
    assert by_metric["Requests"]["Requests"] == 3
    assert by_metric["Requests"]["route"] == "/api/v1/x"
    assert by_metric["RequestLatency"]["RequestLatency"] == [12.5, 30.0]
    assert declared(by_metric["RequestLatency"]) == {"RequestLatency": "Milliseconds"}
    assert by_metric["DBPoolUsage"]["DBPoolUsage"] == 60
    assert declared(by_metric["DBPoolUsage"]) == {"DBPoolUsage": "Percent"}


def test_every_metric_is_published_for_the_service_and_for_its_own_dimensions():
    metrics, sink, lines = make()
    metrics.observe("RequestLatency", 5, route="/r", method="POST")
    metrics.incr("BackupSuccess")
    sink.flush()
    docs = {next(iter(declared(d))): d for d in documents(lines)}
    latency = docs["RequestLatency"]
    assert latency["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["service", "environment"],
        ["service", "environment", "method", "route"],
    ]
    assert (latency["service"], latency["environment"]) == ("api", "production")
    assert docs["BackupSuccess"]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "environment"]]


def test_a_hot_path_writes_a_line_per_hundred_observations_not_per_observation():
    metrics, sink, lines = make()
    for i in range(250):
        metrics.observe("FirstTokenLatency", float(i))
    sink.flush()
    docs = documents(lines)
    assert len(docs) == 3
    values = [v for d in docs for v in d["FirstTokenLatency"]]
    assert sorted(values) == [float(i) for i in range(250)]
    for doc in docs:
        check_emf(doc)


def test_units_are_mapped_to_cloudwatch_units():
    assert cloudwatch_unit("ms") == "Milliseconds"
    assert cloudwatch_unit("percent") == "Percent"
    assert cloudwatch_unit("%") == "Percent"
    assert cloudwatch_unit("Count") == "Count"
    assert cloudwatch_unit("bytes") == "Bytes"
    assert cloudwatch_unit("furlongs") == "None"


def test_non_finite_values_are_skipped_so_the_line_stays_valid():
    metrics, sink, lines = make()
    metrics.gauge("HallucinationRate", float("nan"), unit="Percent")
    metrics.gauge("ValkeyMemoryUsage", 12.0, unit="Percent")
    sink.flush()
    [doc] = documents(lines)
    assert declared(doc) == {"ValkeyMemoryUsage": "Percent"}


def test_more_than_a_hundred_metrics_with_the_same_dimensions_are_split_across_lines():
    metrics, sink, lines = make()
    for i in range(150):
        metrics.incr(f"Metric{i}")
    sink.flush()
    docs = documents(lines)
    assert len(docs) == 2
    assert sum(len(declared(d)) for d in docs) == 150


def test_the_background_thread_flushes_on_its_interval_and_on_close():
    lines: list[str] = []
    sink = EmfSink(service="api", environment="production", write=lines.append, flush_interval=0.05)
    metrics = Metrics([sink])
    sink.start()
    metrics.incr("Requests")
    sink.close()
    assert [json.loads(line)["Requests"] for line in lines] == [1]


def test_lines_go_to_stdout_by_default():
    code = (
        "from sage.observability.emf import EmfSink\n"
        "from sage.observability.metrics import Metrics\n"
        "sink = EmfSink(service='ingestor', environment='production')\n"
        "Metrics([sink]).incr('FeedMessages', exchange='binance')\n"
        "sink.flush()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    doc = json.loads(out.strip())
    assert doc["FeedMessages"] == 1
    assert doc["exchange"] == "binance"
    assert doc["service"] == "ingestor"
