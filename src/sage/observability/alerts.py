"""The in-app alert rules of spec 9.3, as a pure engine.

`evaluate(rules, state, snapshot, now)` returns the next state and the transitions: a
rule fires once when its condition starts (after holding for `for_seconds`) and resolves
once when it clears, never on every request or every evaluation. Not enough data (too
few requests in the window, a gauge never set) counts as "not breaching".

Rules (thresholds from SAGE_ALERT_*; SAGE_ALERT_RULES_OFF lists keys to skip):
  errors       error_rate: API 5xx / requests > 5 % over 5 min; db_pool: pool in use > 90 %;
               hallucination: response-level hallucination rate > 1 %
  performance  api_p95: API P95 > 500 ms over 10 min; first_token: SSE first token P95 > 5 s
               over 5 min; valkey_memory: Valkey memory > 80 %; llm_queue: LLM queue at its
               cap of 1000 (the queue never exceeds its cap, so "at" is the signal)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sage.notify.channels import Alert, Channel
from sage.observability.metrics import quantile
from sage.observability.windows import History, SeriesFilter, Snapshot, route_filter
from sage.settings import ConfigurationError, Settings


@dataclass(frozen=True)
class Reading:
    value: float | None  # None: not enough data to judge
    detail: str


Measure = Callable[[History, float], Reading]


@dataclass(frozen=True)
class Rule:
    key: str
    channel: Channel
    title: str
    threshold: float
    unit: str  # "%", "ms" or ""
    measure: Measure
    window: float = 0.0  # seconds of history the measure reads
    for_seconds: float = 0.0  # how long the condition must hold before it fires
    scope: str = "task"  # "task": this process's own metrics; "cluster": a shared resource
    inclusive: bool = False  # breach at the threshold too (>=), not only above it

    def breached(self, value: float | None) -> bool:
        if value is None:
            return False
        return value >= self.threshold if self.inclusive else value > self.threshold

    def format(self, value: float | None) -> str:
        return format_value(value, self.unit)


@dataclass(frozen=True)
class RuleState:
    pending_since: float | None = None
    firing_since: float | None = None


@dataclass(frozen=True)
class Transition:
    rule: Rule
    fired: bool  # True: the condition started; False: it cleared
    reading: Reading
    at: float
    since: float  # when the rule started firing


@dataclass(frozen=True)
class EngineState:
    history: History = field(default_factory=History)
    rules: Mapping[str, RuleState] = field(default_factory=dict)


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:g}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


# -- measures ---------------------------------------------------------------------------------------
def error_rate(window: float, min_requests: int) -> Measure:
    def measure(history: History, now: float) -> Reading:
        requests = history.increase("Requests", now, window)
        errors = history.increase("Http5xx", now, window)
        if requests < min_requests:
            return Reading(None, f"{requests:g} requests in the last {_minutes(window)}")
        rate = errors / requests * 100
        return Reading(rate, f"{errors:g} of {requests:g} requests answered 5xx in the last {_minutes(window)}")

    return measure


def percentile(name: str, q: float, window: float, min_samples: int, label: str) -> Measure:
    def measure(history: History, now: float) -> Reading:
        values = history.observations(name, now, window)
        if len(values) < min_samples:
            return Reading(None, f"{len(values)} {label} in the last {_minutes(window)}")
        value = quantile(values, q)
        return Reading(value, f"P{q * 100:g} of {len(values)} {label} in the last {_minutes(window)}")

    return measure


def gauge(name: str, label: str, **dimensions: str) -> Measure:
    def measure(history: History, now: float) -> Reading:
        value = history.gauge(name, **dimensions)
        return Reading(value, f"{label} ({name})")

    return measure


def default_rules(settings: Settings) -> list[Rule]:
    rules = _all_rules(settings)
    off = set(settings.alert_rules_off)
    unknown = off - {rule.key for rule in rules}
    if unknown:
        known = ", ".join(rule.key for rule in rules)
        raise ConfigurationError(f"SAGE_ALERT_RULES_OFF names unknown rules {sorted(unknown)}; known: {known}")
    return [rule for rule in rules if rule.key not in off]


def _all_rules(settings: Settings) -> list[Rule]:
    s = settings
    return [
        Rule(
            "error_rate",
            Channel.ERRORS,
            f"API error rate above {s.alert_error_rate_percent:g} %",
            s.alert_error_rate_percent,
            "%",
            error_rate(s.alert_error_rate_window_seconds, s.alert_error_rate_min_requests),
            window=s.alert_error_rate_window_seconds,
        ),
        Rule(
            "db_pool",
            Channel.ERRORS,
            f"Database connection pool above {s.alert_db_pool_percent:g} %",
            s.alert_db_pool_percent,
            "%",
            gauge("DBPoolUsage", "connections checked out ÷ pool size"),
        ),
        Rule(
            "api_p95",
            Channel.PERFORMANCE,
            f"API response time P95 above {s.alert_api_p95_ms:g} ms",
            s.alert_api_p95_ms,
            "ms",
            percentile(
                "RequestLatency", 0.95, s.alert_api_p95_window_seconds, s.alert_api_p95_min_requests, "requests"
            ),
            window=s.alert_api_p95_window_seconds,
        ),
        Rule(
            "first_token",
            Channel.PERFORMANCE,
            f"SSE first token above {s.alert_first_token_ms / 1000:g} s",
            s.alert_first_token_ms,
            "ms",
            percentile("FirstTokenLatency", 0.95, s.alert_first_token_window_seconds, 3, "chat answers"),
            window=s.alert_first_token_window_seconds,
        ),
        Rule(
            "valkey_memory",
            Channel.PERFORMANCE,
            f"Valkey memory above {s.alert_valkey_memory_percent:g} %",
            s.alert_valkey_memory_percent,
            "%",
            gauge("ValkeyMemoryUsage", "used memory ÷ maxmemory"),
            scope="cluster",
        ),
        Rule(
            "hallucination",
            Channel.ERRORS,
            f"Hallucination rate above {s.alert_hallucination_percent:g} %",
            s.alert_hallucination_percent,
            "%",
            gauge("HallucinationRate", "answers with an unverified number ÷ answers with numbers", level="response"),
        ),
        Rule(
            "llm_queue",
            Channel.PERFORMANCE,
            f"LLM queue at {s.alert_llm_queue_size:g}",
            s.alert_llm_queue_size,
            "",
            gauge("LLMQueueSize", "chat requests waiting for a model slot"),
            inclusive=True,
        ),
    ]


# -- the engine -------------------------------------------------------------------------------------
def evaluate(
    rules: Sequence[Rule],
    state: EngineState,
    snapshot: Snapshot,
    now: float,
    *,
    include: SeriesFilter | None = None,
) -> tuple[EngineState, list[Transition]]:
    keep = max([r.window for r in rules] + [0.0]) + 1.0
    history = state.history.advance(snapshot, now, keep_seconds=keep, include=include or route_filter())
    transitions: list[Transition] = []
    states: dict[str, RuleState] = {}
    for rule in rules:
        current = state.rules.get(rule.key, RuleState())
        reading = rule.measure(history, now)
        breaching = rule.breached(reading.value)
        if breaching:
            pending = current.pending_since if current.pending_since is not None else now
            firing = current.firing_since
            if firing is None and now - pending >= rule.for_seconds:
                firing = now
                transitions.append(Transition(rule, True, reading, now, now))
            states[rule.key] = RuleState(pending, firing)
        else:
            if current.firing_since is not None:
                transitions.append(Transition(rule, False, reading, now, current.firing_since))
            states[rule.key] = RuleState()
    return EngineState(history=history, rules=states), transitions


def transition_alert(transition: Transition, *, task: str) -> Alert:
    rule = transition.rule
    value = rule.format(transition.reading.value)
    threshold = rule.format(rule.threshold)
    fields = {"Value": value, "Threshold": threshold}
    if rule.scope == "task":
        fields["Task"] = task
    if transition.fired:
        return Alert(
            title=rule.title,
            message=f"{value} (threshold {threshold}): {transition.reading.detail}.",
            fields=fields,
            dedupe_key=f"rule:{rule.key}:fired",
        )
    lasted = _minutes(max(0.0, transition.at - transition.since))
    return Alert(
        title=rule.title,
        message=f"Cleared after {lasted}; now {value}: {transition.reading.detail}.",
        fields={**fields, "Lasted": lasted},
        dedupe_key=f"rule:{rule.key}:resolved",
        resolved=True,
    )
