"""Alarm router: CloudWatch alarm -> SNS topic `sage-alerts` -> this Lambda -> Discord.

Standard library and boto3 only (both are in the Lambda Python runtime). The package is this
directory's handler.py plus the app's src/sage/notify/discord_limits.py, which the infra
program adds as the top-level module `discord_limits` (infra/sage_infra/router_package.py),
so the app's notifier and this router obey one file of Discord limits and rate-limit rules
without the app being packaged here.

Handler: `handler.handler`. Environment:
  DISCORD_WEBHOOK_ERRORS_ARN, DISCORD_WEBHOOK_PERFORMANCE_ARN, DISCORD_WEBHOOK_BUSINESS_ARN
      Secrets Manager ARNs whose SecretString is the webhook URL (or JSON {"url": ...}).
      Read with GetSecretValue and cached across invocations for SECRET_CACHE_SECONDS (300).
  ALARM_ROUTES           optional: alarm-name prefixes to channels, JSON {"sage-api-": "errors"}
                         or "sage-api-=errors,sage-rds-=performance"; the longest prefix wins.
  ALARM_DEFAULT_CHANNEL  channel for alarms nothing else routes (default: errors).
  ALARM_NOTIFY_OK_FROM_INSUFFICIENT_DATA  "true" to post INSUFFICIENT_DATA -> OK too (default:
                         only ALARM -> OK posts "resolved"; new alarms settling would be noise).
Routing order: ALARM_ROUTES, then a channel tag opening the description ("[errors] ..."),
then the built-in prefixes sage-errors- / sage-performance- / sage-business-, then keywords
in the name (error, 5xx, fail, health, pool -> errors; cpu,
memory, latency, p95, response, token, queue, stale, hallucination -> performance;
dau, business, portfolio, market-alert -> business), then ALARM_DEFAULT_CHANNEL.

Delivery honours 429 `retry_after` and retries 5xx / timeouts with bounded backoff within
the invocation's remaining time; when Discord finally fails the handler raises, so the
asynchronous invocation is retried. Webhook URLs are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import discord_limits as limits

log = logging.getLogger("alarm_router")
log.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

CHANNELS = ("errors", "performance", "business")
ARN_VARIABLES = {
    "errors": "DISCORD_WEBHOOK_ERRORS_ARN",
    "performance": "DISCORD_WEBHOOK_PERFORMANCE_ARN",
    "business": "DISCORD_WEBHOOK_BUSINESS_ARN",
}
BUILTIN_PREFIXES = (("sage-errors-", "errors"), ("sage-performance-", "performance"), ("sage-business-", "business"))
KEYWORDS = (
    (("error", "5xx", "fail", "health", "pool"), "errors"),
    (("cpu", "memory", "latency", "p95", "p99", "response", "token", "queue", "stale", "hallucination"), "performance"),
    (("dau", "business", "portfolio", "market-alert"), "business"),
)
OPERATORS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": "≥",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "≤",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside the band",
    "GreaterThanUpperThreshold": "above the band",
    "LessThanLowerThreshold": "below the band",
}
HTTP_TIMEOUT = 10.0
MAX_ATTEMPTS = 4
SAFETY_SECONDS = 2.0  # leave time to raise cleanly before Lambda's own timeout

# Replaceable in tests.
sleep: Callable[[float], None] = time.sleep


class DeliveryError(RuntimeError):
    """Discord did not take the message; raising makes Lambda retry the SNS event."""


class ConfigurationError(RuntimeError):
    pass


# -- routing ------------------------------------------------------------------------------------
def parse_routes(text: str | None) -> list[tuple[str, str]]:
    """ALARM_ROUTES as (prefix, channel), longest prefix first."""
    if not text or not text.strip():
        return []
    text = text.strip()
    pairs: list[tuple[str, str]]
    if text.startswith("{"):
        data = json.loads(text)
        pairs = [(str(k), str(v)) for k, v in data.items()]
    else:
        pairs = []
        for item in text.split(","):
            if "=" in item:
                prefix, channel = item.split("=", 1)
                pairs.append((prefix.strip(), channel.strip()))
    for prefix, channel in pairs:
        if channel not in CHANNELS:
            raise ConfigurationError(f"ALARM_ROUTES: unknown channel {channel!r} for prefix {prefix!r}")
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def route(name: str, routes: list[tuple[str, str]], default: str = "errors", description: str | None = None) -> str:
    for prefix, channel in routes:
        if name.startswith(prefix):
            return channel
    tag = re.match(r"\s*\[(\w+)\]", description or "")
    if tag and tag.group(1).lower() in CHANNELS:
        return tag.group(1).lower()
    for prefix, channel in BUILTIN_PREFIXES:
        if name.startswith(prefix):
            return channel
    lowered = name.lower()
    for words, channel in KEYWORDS:
        if any(word in lowered for word in words):
            return channel
    return default


# -- the alarm ----------------------------------------------------------------------------------
@dataclass
class Alarm:
    name: str
    state: str
    old_state: str = ""
    description: str | None = None
    reason: str = ""
    changed_at: str = ""
    region: str = ""
    account: str = ""
    arn: str = ""
    trigger: dict[str, Any] = field(default_factory=dict)
    rule: str | None = None  # composite alarms

    @property
    def region_code(self) -> str:
        parts = self.arn.split(":")
        return parts[3] if len(parts) > 4 else ""


def parse_alarm(message: Any) -> Alarm | None:
    """The alarm in an SNS message body, or None when the body is not a CloudWatch alarm."""
    if not isinstance(message, dict) or not message.get("AlarmName"):
        return None
    trigger = message.get("Trigger")
    return Alarm(
        name=str(message["AlarmName"]),
        state=str(message.get("NewStateValue") or "UNKNOWN"),
        old_state=str(message.get("OldStateValue") or ""),
        description=message.get("AlarmDescription") or None,
        reason=str(message.get("NewStateReason") or ""),
        changed_at=str(message.get("StateChangeTime") or ""),
        region=str(message.get("Region") or ""),
        account=str(message.get("AWSAccountId") or ""),
        arn=str(message.get("AlarmArn") or ""),
        trigger=trigger if isinstance(trigger, dict) else {},
        rule=message.get("AlarmRule") or None,
    )


def _number(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _dimensions(items: Any) -> str:
    pairs = []
    for item in items or []:
        if isinstance(item, dict):
            name = item.get("name", item.get("Name", ""))
            value = item.get("value", item.get("Value", ""))
            pairs.append(f"{name}={value}")
    return ", ".join(pairs)


def _period(seconds: Any) -> str:
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
    return "?"


def _metric(namespace: Any, name: Any, dims: Any) -> str:
    text = f"{namespace or '?'} {name or '?'}"
    described = _dimensions(dims)
    return f"{text} ({described})" if described else text


def trigger_fields(alarm: Alarm) -> list[tuple[str, str]]:
    """What the alarm watches, for single-metric, percentile and metric-math alarms."""
    t = alarm.trigger
    fields: list[tuple[str, str]] = []
    if alarm.rule:
        fields.append(("Rule", str(alarm.rule)))
    if not t:
        return fields
    metrics = t.get("Metrics")
    if isinstance(metrics, list) and metrics:
        for item in metrics:
            if not isinstance(item, dict):
                continue
            ident = str(item.get("Id", "?"))
            label = f" [{item['Label']}]" if item.get("Label") else ""
            returned = " (alarmed on)" if item.get("ReturnData") else ""
            if item.get("Expression"):
                fields.append((f"{ident}{returned}", f"{item['Expression']}{label}"))
                continue
            stat = item.get("MetricStat") or {}
            metric = stat.get("Metric") or {}
            fields.append(
                (
                    f"{ident}{returned}",
                    f"{_metric(metric.get('Namespace'), metric.get('MetricName'), metric.get('Dimensions'))} "
                    f"{stat.get('Stat', '?')} per {_period(stat.get('Period'))}{label}",
                )
            )
    else:
        fields.append(("Metric", _metric(t.get("Namespace"), t.get("MetricName"), t.get("Dimensions"))))
        statistic = t.get("ExtendedStatistic") or t.get("Statistic") or "?"
        if t.get("StatisticType") == "ExtendedStatistic" or t.get("ExtendedStatistic"):
            statistic = str(t.get("ExtendedStatistic") or statistic)
        else:
            statistic = str(statistic).capitalize()
        fields.append(("Statistic", f"{statistic} per {_period(t.get('Period'))}"))
    operator = OPERATORS.get(str(t.get("ComparisonOperator", "")), str(t.get("ComparisonOperator", "?")))
    threshold = t.get("Threshold")
    if threshold is None and t.get("ThresholdMetricId"):
        threshold = f"band {t['ThresholdMetricId']}"
    periods = t.get("EvaluationPeriods")
    needed = t.get("DatapointsToAlarm") or periods
    condition = f"{operator} {_number(threshold) if threshold is not None else '?'}"
    if periods:
        condition += f" for {_number(needed)} of {_number(periods)} periods"
    fields.append(("Condition", condition))
    return fields


def _timestamp(text: str) -> str | None:
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, pattern).isoformat()
        except ValueError:
            continue
    return None


def console_url(alarm: Alarm) -> str | None:
    region = alarm.region_code
    if not region:
        return None
    name = urllib.parse.quote(alarm.name, safe="")
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{name}"


def style_for(alarm: Alarm, channel: str) -> limits.Style:
    if alarm.state == "OK":
        return limits.RESOLVED_STYLE
    if alarm.state == "INSUFFICIENT_DATA":
        return limits.NO_DATA_STYLE
    return limits.CHANNEL_STYLES[channel]


def alarm_payload(alarm: Alarm, channel: str) -> dict[str, Any]:
    style = style_for(alarm, channel)
    description = alarm.description or "No description."
    if alarm.reason:
        description += f"\n\n{alarm.reason}"
    fields = [{"name": "State", "value": f"{alarm.old_state or '?'} → {alarm.state}", "inline": True}]
    fields.append({"name": "Channel", "value": channel, "inline": True})
    for name, value in trigger_fields(alarm):
        fields.append({"name": name, "value": value, "inline": False})
    if alarm.region:
        fields.append({"name": "Region", "value": alarm.region, "inline": True})
    if alarm.account:
        fields.append({"name": "Account", "value": alarm.account, "inline": True})
    embed: dict[str, Any] = {
        "title": f"{style.label} {alarm.name}",
        "description": description,
        "color": style.colour,
        "fields": fields,
        "footer": {"text": "Sage alarm router · CloudWatch"},
    }
    stamp = _timestamp(alarm.changed_at)
    if stamp:
        embed["timestamp"] = stamp
    url = console_url(alarm)
    if url:
        embed["url"] = url
    return limits.build_message(f"{style.label} {alarm.name}", [embed])


def text_payload(subject: str, text: str, channel: str) -> dict[str, Any]:
    """An SNS message that is not a CloudWatch alarm (a test publish, another service)."""
    style = limits.CHANNEL_STYLES[channel]
    embed = {"title": f"{style.label} {subject or 'SNS notification'}", "description": text, "color": style.colour}
    return limits.build_message(f"{style.label} {subject or 'SNS notification'}", [embed])


# -- secrets --------------------------------------------------------------------------------------
class SecretCache:
    """Webhook URLs by secret ARN, kept across invocations of a warm container."""

    def __init__(self, ttl: float = 300.0, client_factory: Callable[[], Any] | None = None) -> None:
        self.ttl = ttl
        self._client_factory = client_factory
        self._client: Any = None
        self._values: dict[str, tuple[str, float]] = {}
        self.fetches = 0

    def _secrets_client(self) -> Any:
        if self._client is None:
            if self._client_factory is not None:
                self._client = self._client_factory()
            else:
                import boto3

                self._client = boto3.client("secretsmanager")
        return self._client

    def get(self, arn: str, *, refresh: bool = False) -> str:
        cached = self._values.get(arn)
        if cached is not None and not refresh and time.monotonic() - cached[1] < self.ttl:
            return cached[0]
        response = self._secrets_client().get_secret_value(SecretId=arn)
        self.fetches += 1
        url = webhook_from_secret(str(response.get("SecretString") or ""))
        self._values[arn] = (url, time.monotonic())
        return url


def webhook_from_secret(value: str) -> str:
    text = value.strip()
    if text.startswith("{"):
        data = json.loads(text)
        for key in ("url", "webhook_url", "webhook", "value"):
            if isinstance(data.get(key), str):
                text = data[key].strip()
                break
        else:
            raise ConfigurationError("webhook secret JSON has no url field")
    if not text.startswith(("https://", "http://")):
        raise ConfigurationError("webhook secret is not a URL")
    return text


_SECRETS = SecretCache(float(os.environ.get("SECRET_CACHE_SECONDS", "300")))


# -- delivery -------------------------------------------------------------------------------------
def post(url: str, payload: Mapping[str, Any], timeout: float) -> tuple[int, Mapping[str, str], bytes]:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the URL comes from our own secret
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": limits.USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()) if exc.headers else {}, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError):
        return 0, {}, b""


def deliver(
    webhook: Callable[[bool], str],
    payload: dict[str, Any],
    *,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """POST until Discord takes it or the time runs out; raises DeliveryError."""
    failures = 0
    refreshed = False
    fell_back = False
    url = webhook(False)
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeliveryError("out of time before Discord accepted the message")
        status, headers, body = post(url, payload, min(HTTP_TIMEOUT, remaining))
        outcome = limits.classify_response(status, headers, body)
        if outcome.kind == limits.DELIVERED:
            return
        if outcome.kind == limits.RATE_LIMITED:
            if clock() + outcome.delay > deadline:
                raise DeliveryError(f"rate limited for {outcome.delay:g} s, longer than the time left")
            sleep(outcome.delay)
            continue
        if outcome.kind == limits.RETRY:
            failures += 1
            delay = limits.backoff_delay(failures, base=0.5, cap=5.0, jitter=random.random())
            if failures >= MAX_ATTEMPTS or clock() + delay > deadline:
                raise DeliveryError(f"gave up after {failures} attempts: {outcome.detail}")
            sleep(delay)
            continue
        if outcome.kind == limits.DISABLED:
            if not refreshed:  # the webhook may have been rotated: re-read the secret once
                refreshed = True
                fresh = webhook(True)
                if fresh != url:
                    url = fresh
                    continue
            raise DeliveryError(f"webhook gone: {outcome.detail}")
        if not fell_back:
            fell_back = True
            payload = limits.plain_text(payload)
            continue
        raise DeliveryError(f"rejected by Discord: {outcome.detail}")


# -- entry point ----------------------------------------------------------------------------------
def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _arn_for(channel: str) -> tuple[str, str]:
    arn = os.environ.get(ARN_VARIABLES[channel], "").strip()
    if arn:
        return channel, arn
    fallback = os.environ.get(ARN_VARIABLES["errors"], "").strip()
    if fallback:
        log.warning(json.dumps({"event": "no webhook for channel; using errors", "channel": channel}))
        return "errors", fallback
    raise ConfigurationError(f"{ARN_VARIABLES[channel]} is not set")


def _remaining_seconds(context: Any) -> float:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if callable(getter):
        return max(0.0, float(getter()) / 1000 - SAFETY_SECONDS)
    return 30.0


def _records(event: Any) -> list[dict[str, Any]]:
    records = event.get("Records") if isinstance(event, dict) else None
    return [r for r in records or [] if isinstance(r, dict) and isinstance(r.get("Sns"), dict)]


def handler(event: Any, context: Any) -> dict[str, Any]:
    deadline = time.monotonic() + _remaining_seconds(context)
    routes = parse_routes(os.environ.get("ALARM_ROUTES"))
    default = os.environ.get("ALARM_DEFAULT_CHANNEL", "errors").strip() or "errors"
    if default not in CHANNELS:
        raise ConfigurationError(f"ALARM_DEFAULT_CHANNEL: unknown channel {default!r}")
    delivered: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    failures: list[str] = []
    for record in _records(event):
        sns = record["Sns"]
        raw = sns.get("Message") or ""
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            message = None
        alarm = parse_alarm(message)
        if alarm is not None:
            settling = alarm.state == "OK" and alarm.old_state == "INSUFFICIENT_DATA"
            if settling and not _flag("ALARM_NOTIFY_OK_FROM_INSUFFICIENT_DATA"):
                skipped.append({"alarm": alarm.name, "state": alarm.state})
                continue
            channel = route(alarm.name, routes, default, alarm.description)
            channel, arn = _arn_for(channel)
            payload = alarm_payload(alarm, channel)
            label = alarm.name
        else:
            channel, arn = _arn_for(default)
            payload = text_payload(str(sns.get("Subject") or ""), str(raw), channel)
            label = str(sns.get("Subject") or "sns message")

        def webhook(refresh: bool, arn: str = arn) -> str:
            return _SECRETS.get(arn, refresh=refresh)

        try:
            deliver(webhook, payload, deadline=deadline)
        except DeliveryError as exc:
            log.error(
                json.dumps({"event": "discord delivery failed", "alarm": label, "channel": channel, "reason": str(exc)})
            )
            failures.append(f"{label}: {exc}")
            continue
        log.info(json.dumps({"event": "alarm posted", "alarm": label, "channel": channel}))
        delivered.append({"alarm": label, "channel": channel})
    if failures:
        raise DeliveryError("; ".join(failures))
    return {"delivered": delivered, "skipped": skipped}
