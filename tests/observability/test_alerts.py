"""The alert rules as a pure function of (metrics snapshot, now): no sleeping."""

from __future__ import annotations

import pytest

from sage.notify import Channel
from sage.observability.alerts import (
    EngineState,
    Reading,
    Rule,
    Transition,
    default_rules,
    evaluate,
    gauge,
    transition_alert,
)
from sage.observability.metrics import Metrics
from sage.settings import ConfigurationError, Settings


@pytest.fixture
def rules(make_settings) -> list[Rule]:
    return default_rules(make_settings())


class Clock:
    """Drives evaluations at explicit times, like the runtime loop would."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.metrics = Metrics()
        self.state = EngineState()
        self.now = 1_000_000.0

    def step(self, seconds: float = 15.0) -> list[tuple[str, bool]]:
        self.now += seconds
        self.state, transitions = evaluate(self.rules, self.state, self.metrics.snapshot(), self.now)
        return [(t.rule.key, t.fired) for t in transitions]

    def requests(self, n: int, *, errors: int = 0, ms: float = 20.0, route: str = "/api/v1/x") -> None:
        for i in range(n):
            self.metrics.observe("RequestLatency", ms, route=route, method="GET")
            self.metrics.incr("Requests", route=route)
            if i < errors:
                self.metrics.incr("Http5xx", route=route)


def test_default_rules_cover_the_spec_with_its_thresholds(rules):
    by_key = {r.key: r for r in rules}
    assert by_key["error_rate"].channel is Channel.ERRORS and by_key["error_rate"].threshold == 5
    assert by_key["error_rate"].window == 300
    assert by_key["db_pool"].channel is Channel.ERRORS and by_key["db_pool"].threshold == 90
    assert by_key["api_p95"].channel is Channel.PERFORMANCE and by_key["api_p95"].threshold == 500
    assert by_key["api_p95"].window == 600
    assert by_key["first_token"].channel is Channel.PERFORMANCE and by_key["first_token"].threshold == 5000
    assert by_key["valkey_memory"].channel is Channel.PERFORMANCE and by_key["valkey_memory"].threshold == 80


def test_rules_can_be_switched_off_one_by_one(make_settings):
    settings: Settings = make_settings(alert_rules_off="first_token, hallucination")
    keys = {r.key for r in default_rules(settings)}
    assert "first_token" not in keys and "hallucination" not in keys and "error_rate" in keys


def test_an_unknown_rule_name_is_a_configuration_error(make_settings):
    with pytest.raises(ConfigurationError, match="SAGE_ALERT_RULES_OFF"):
        default_rules(make_settings(alert_rules_off="first_tokn"))


def test_thresholds_come_from_settings(make_settings):
    settings: Settings = make_settings(alert_error_rate_percent=2.5, alert_api_p95_ms=300)
    by_key = {r.key: r for r in default_rules(settings)}
    assert by_key["error_rate"].threshold == 2.5
    assert by_key["api_p95"].threshold == 300


def test_an_error_rate_above_five_percent_fires_once_and_clears_once(rules):
    clock = Clock(rules)
    clock.requests(100, errors=10)
    assert clock.step() == [("error_rate", True)]
    clock.requests(100, errors=10)
    assert clock.step() == []  # still failing: no second message
    for _ in range(30):  # 7.5 minutes of clean traffic pushes the errors out of the 5-minute window
        clock.requests(100)
        transitions = clock.step()
        if transitions:
            break
    assert transitions == [("error_rate", False)]


def test_an_error_rate_at_the_threshold_does_not_fire(rules):
    clock = Clock(rules)
    clock.requests(100, errors=5)
    assert clock.step() == []


def test_too_few_requests_never_fire_the_error_rate(rules):
    clock = Clock(rules)
    clock.requests(5, errors=5)
    assert clock.step() == []


def test_errors_older_than_the_window_do_not_count(rules):
    clock = Clock(rules)
    clock.requests(10, errors=10)
    clock.step()  # 10 requests: below the minimum
    clock.step(301)
    clock.requests(100)
    assert clock.step() == []


def test_slow_requests_fire_the_p95_rule_and_health_checks_do_not_hide_them(rules):
    clock = Clock(rules)
    clock.requests(100, ms=800)
    clock.requests(2000, ms=1, route="/health")  # excluded: monitoring traffic
    assert clock.step() == [("api_p95", True)]


def test_streams_do_not_count_as_slow_requests(rules):
    clock = Clock(rules)
    for _ in range(100):  # the middleware records Server-Sent Events responses as StreamDuration
        clock.metrics.observe("StreamDuration", 60_000, route="/api/v1/market/stream", method="GET")
        clock.metrics.observe("StreamDuration", 30_000, route="/api/v1/chats/{chat_id}/messages", method="POST")
    clock.requests(100, ms=50)
    assert clock.step() == []


def test_reading_messages_is_an_ordinary_request_even_though_posting_streams(rules):
    clock = Clock(rules)
    clock.requests(100, ms=900, route="/api/v1/chats/{chat_id}/messages")  # GET
    assert clock.step() == [("api_p95", True)]


def test_p95_clears_when_the_slow_requests_leave_the_ten_minute_window(rules):
    clock = Clock(rules)
    clock.requests(100, ms=900)
    assert clock.step() == [("api_p95", True)]
    clock.requests(100, ms=50)
    assert clock.step(300) == []  # the slow ones are still in the window
    clock.requests(100, ms=50)
    assert clock.step(301) == [("api_p95", False)]


def test_slow_first_tokens_fire_the_performance_rule(rules):
    clock = Clock(rules)
    for _ in range(5):
        clock.metrics.observe("FirstTokenLatency", 7000)
    assert clock.step() == [("first_token", True)]


def test_gauges_fire_while_above_and_clear_below(rules):
    clock = Clock(rules)
    clock.metrics.gauge("DBPoolUsage", 95, unit="Percent")
    clock.metrics.gauge("ValkeyMemoryUsage", 85, unit="Percent")
    assert sorted(clock.step()) == [("db_pool", True), ("valkey_memory", True)]
    assert clock.step() == []
    clock.metrics.gauge("DBPoolUsage", 40, unit="Percent")
    assert clock.step() == [("db_pool", False)]


def test_llm_queue_and_hallucination_rate_have_rules(rules):
    clock = Clock(rules)
    clock.metrics.gauge("LLMQueueSize", 1000)  # the queue's cap: it never goes above
    clock.metrics.gauge("HallucinationRate", 2.5, unit="Percent", level="response")
    assert sorted(clock.step()) == [("hallucination", True), ("llm_queue", True)]


def test_the_hallucination_rule_watches_the_response_level_rate(rules):
    clock = Clock(rules)
    clock.metrics.gauge("HallucinationRate", 0.5, unit="Percent", level="response")
    clock.metrics.gauge("HallucinationRate", 3.0, unit="Percent", level="claim")
    assert clock.step() == []


def test_a_rule_with_a_hold_time_fires_only_after_the_condition_held():
    rule = Rule("pool", Channel.ERRORS, "pool", 90, "%", gauge("DBPoolUsage", "pool"), for_seconds=60)
    clock = Clock([rule])
    clock.metrics.gauge("DBPoolUsage", 95)
    assert clock.step() == []
    assert clock.step(30) == []
    assert clock.step(30) == [("pool", True)]


def test_a_condition_that_clears_before_the_hold_time_never_fires():
    rule = Rule("pool", Channel.ERRORS, "pool", 90, "%", gauge("DBPoolUsage", "pool"), for_seconds=60)
    clock = Clock([rule])
    clock.metrics.gauge("DBPoolUsage", 95)
    clock.step()
    clock.metrics.gauge("DBPoolUsage", 10)
    assert clock.step(30) == []
    clock.metrics.gauge("DBPoolUsage", 95)
    assert clock.step(45) == []  # the hold time starts again


def test_evaluation_is_pure_the_same_inputs_give_the_same_answer(rules):
    metrics = Metrics()
    for _ in range(50):
        metrics.incr("Requests", route="/a")
        metrics.incr("Http5xx", route="/a")
    snapshot = metrics.snapshot()
    first = evaluate(rules, EngineState(), snapshot, 100.0)
    second = evaluate(rules, EngineState(), snapshot, 100.0)
    assert [(t.rule.key, t.fired) for t in first[1]] == [(t.rule.key, t.fired) for t in second[1]]
    assert first[0].rules == second[0].rules


def test_a_fired_alert_names_value_threshold_and_task(rules):
    clock = Clock(rules)
    clock.requests(100, errors=10)
    clock.now += 15
    _, [transition] = evaluate(rules, EngineState(), clock.metrics.snapshot(), clock.now)
    alert = transition_alert(transition, task="ip-10-0-10-5:1")
    assert alert.title == "API error rate above 5 %"
    assert alert.fields == {"Value": "10.0 %", "Threshold": "5.0 %", "Task": "ip-10-0-10-5:1"}
    assert "10 of 100 requests answered 5xx" in alert.message
    assert not alert.resolved


def test_a_resolved_alert_says_how_long_it_lasted():
    rule = Rule("pool", Channel.ERRORS, "DB pool above 90 %", 90, "%", gauge("DBPoolUsage", "pool"))
    alert = transition_alert(Transition(rule, False, Reading(40, "pool"), at=700, since=100), task="t")
    assert alert.resolved
    assert alert.fields["Lasted"] == "10 min"
    assert alert.message.startswith("Cleared after 10 min")
