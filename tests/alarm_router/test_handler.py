"""The alarm router end to end: SNS event in, Discord message out (moto + fake Discord)."""

from __future__ import annotations

import json
import logging

import pytest

from tests.alarm_router import events
from tests.alarm_router.conftest import LambdaContext
from tests.notify.fake_discord import discord_problems, would_ping


def only_embed(discord, hook: str) -> dict:
    [payload] = discord.accepted(hook)
    assert discord_problems(payload) == []
    assert not would_ping(payload)
    [embed] = payload["embeds"]
    return embed


def fields(embed: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed["fields"]}


def test_a_cpu_alarm_goes_to_performance_as_a_warning(router, webhooks, discord, context):
    result = router.handler(events.sns_event(events.single_metric()), context)
    assert result["delivered"] == [{"alarm": "sage-backend-cpu-high", "channel": "performance"}]
    embed = only_embed(discord, "performance")
    assert embed["title"] == "🟠 WARNING sage-backend-cpu-high"
    assert embed["color"] == 0xFFA500
    values = fields(embed)
    assert values["State"] == "OK → ALARM"
    assert values["Metric"] == "AWS/ECS CPUUtilization (ClusterName=sage, ServiceName=backend)"
    assert values["Statistic"] == "Average per 5 min"
    assert values["Condition"] == "> 80 for 2 of 2 periods"
    assert embed["description"].startswith("ECS CPU utilization is above 80%")
    assert embed["url"].startswith("https://us-west-2.console.aws.amazon.com/cloudwatch/")
    assert embed["timestamp"] == "2025-03-01T10:30:15.512000+00:00"


def test_a_percentile_alarm_names_its_percentile(router, webhooks, discord, context):
    router.handler(events.sns_event(events.percentile()), context)
    values = fields(only_embed(discord, "performance"))
    assert values["Statistic"] == "p95 per 1 min"
    assert values["Condition"] == "> 2 for 5 of 5 periods"


def test_a_metric_math_alarm_lists_its_expression_and_metrics(router, webhooks, discord, context):
    router.handler(events.sns_event(events.metric_math()), context)
    embed = only_embed(discord, "errors")
    assert embed["title"] == "🔴 CRITICAL sage-api-error-rate-high"
    assert embed["color"] == 0xFF0000
    values = fields(embed)
    assert values["rate (alarmed on)"] == "100 * errors / requests [5XX rate (%)]"
    assert values["errors"].startswith("AWS/ApplicationELB HTTPCode_Target_5XX_Count")
    assert values["requests"].endswith("Sum per 1 min")
    assert values["Condition"] == "> 5 for 1 of 1 periods"


def test_an_alarm_without_a_description_still_posts(router, webhooks, discord, context):
    router.handler(events.sns_event(events.no_description()), context)
    embed = only_embed(discord, "business")
    assert embed["title"] == "🟢 INFO sage-business-dau-drop"
    assert embed["color"] == 0x00FF00
    assert embed["description"].startswith("No description.")


def test_ok_after_alarm_posts_a_resolved_message(router, webhooks, discord, context):
    router.handler(events.sns_event(events.metric_math(state="OK", old="ALARM")), context)
    embed = only_embed(discord, "errors")
    assert embed["title"] == "✅ RESOLVED sage-api-error-rate-high"
    assert fields(embed)["State"] == "ALARM → OK"


def test_insufficient_data_is_posted_in_grey(router, webhooks, discord, context):
    router.handler(events.sns_event(events.percentile(state="INSUFFICIENT_DATA", old="OK")), context)
    embed = only_embed(discord, "performance")
    assert embed["title"] == "⚪ INSUFFICIENT DATA sage-api-latency-p95"
    assert embed["color"] == 0x95A5A6


def test_a_new_alarm_settling_into_ok_is_not_posted(router, webhooks, discord, context):
    result = router.handler(events.sns_event(events.single_metric(state="OK", old="INSUFFICIENT_DATA")), context)
    assert result["skipped"] == [{"alarm": "sage-backend-cpu-high", "state": "OK"}]
    assert discord.accepted() == []


def test_settling_into_ok_can_be_posted_when_asked(router, webhooks, discord, context, monkeypatch):
    monkeypatch.setenv("ALARM_NOTIFY_OK_FROM_INSUFFICIENT_DATA", "true")
    router.handler(events.sns_event(events.single_metric(state="OK", old="INSUFFICIENT_DATA")), context)
    assert len(discord.accepted("performance")) == 1


def test_a_composite_alarm_shows_its_rule(router, webhooks, discord, context):
    router.handler(events.sns_event(events.composite()), context)
    embed = only_embed(discord, "errors")
    assert fields(embed)["Rule"].startswith('ALARM("sage-backend-cpu-high")')


def test_a_message_that_is_not_an_alarm_goes_to_the_default_channel(router, webhooks, discord, context):
    router.handler(events.sns_event("plain text from a test publish", subject="Test"), context)
    embed = only_embed(discord, "errors")
    assert embed["title"] == "🔴 CRITICAL Test"
    assert embed["description"] == "plain text from a test publish"


def test_configured_prefixes_win_over_the_built_in_routing(router, webhooks, discord, context, monkeypatch):
    monkeypatch.setenv("ALARM_ROUTES", '{"sage-backend-": "business"}')
    router.handler(events.sns_event(events.single_metric()), context)
    assert len(discord.accepted("business")) == 1


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("sage-errors-anything", "errors"),
        ("sage-performance-anything", "performance"),
        ("sage-business-anything", "business"),
        ("sage-rds-cpu-high", "performance"),
        ("sage-valkey-memory-high", "performance"),
        ("sage-db-pool-high", "errors"),
        ("sage-backup-failed", "errors"),
        ("sage-first-token-slow", "performance"),
        ("sage-feed-stale", "performance"),
        ("sage-llm-queue-high", "performance"),
        ("something-else", "errors"),
    ],
)
def test_routing_by_name(router, name, channel):
    assert router.route(name, [], "errors") == channel


def test_a_channel_tag_opening_the_description_routes_the_alarm(router):
    assert router.route("sage-backend-cpu-high", [], "errors", "[business] weekly CPU report") == "business"
    assert router.route("sage-backend-cpu-high", [], "errors", "[pager] CPU") == "performance"


def test_routes_parse_from_json_or_pairs_and_the_longest_prefix_wins(router):
    routes = router.parse_routes("sage-=business, sage-api-=errors")
    assert router.route("sage-api-latency", routes) == "errors"
    assert router.route("sage-other", routes) == "business"
    assert router.parse_routes('{"a-": "performance"}') == [("a-", "performance")]
    with pytest.raises(router.ConfigurationError):
        router.parse_routes("a-=pager")


def test_webhook_urls_are_read_once_and_cached_across_invocations(router, webhooks, discord, context):
    for _ in range(3):
        router.handler(events.sns_event(events.single_metric()), context)
    assert router._SECRETS.fetches == 1
    assert len(discord.accepted("performance")) == 3


def test_a_secret_may_hold_json_with_the_url(router, webhooks, discord, context, aws):
    aws.put_secret_value(SecretId=webhooks["performance"], SecretString=json.dumps({"url": discord.url("json")}))
    router.handler(events.sns_event(events.single_metric()), context)
    assert len(discord.accepted("json")) == 1


def test_a_429_is_waited_out_and_the_message_delivered(router, webhooks, discord, context, sleeps):
    discord.script("performance", ("429", 0.4))
    router.handler(events.sns_event(events.single_metric()), context)
    assert sleeps.calls == [0.4]
    assert discord.statuses("performance") == [429, 204]


def test_server_errors_are_retried_with_bounded_backoff(router, webhooks, discord, context, sleeps):
    discord.script("performance", ("status", 502), ("status", 503))
    router.handler(events.sns_event(events.single_metric()), context)
    assert discord.statuses("performance") == [502, 503, 204]
    assert len(sleeps.calls) == 2 and all(0 < s <= 5 for s in sleeps.calls)


def test_when_discord_finally_fails_the_handler_raises_so_the_event_is_retried(
    router, webhooks, discord, context, sleeps, caplog
):
    discord.script("errors", *[("status", 500)] * 10)
    with caplog.at_level(logging.ERROR, logger="alarm_router"), pytest.raises(router.DeliveryError):
        router.handler(events.sns_event(events.metric_math()), context)
    assert discord.statuses("errors") == [500] * router.MAX_ATTEMPTS
    assert "t0ken-SECRET" not in caplog.text


def test_a_rate_limit_longer_than_the_time_left_raises(router, webhooks, discord, sleeps):
    discord.script("performance", ("429", 60.0))
    with pytest.raises(router.DeliveryError, match="rate limited"):
        router.handler(events.sns_event(events.single_metric()), LambdaContext(remaining_ms=10_000))
    assert sleeps.calls == []


def test_a_removed_webhook_is_reread_from_the_secret_once(router, webhooks, discord, context, aws):
    router.handler(events.sns_event(events.single_metric()), context)  # cache the URL
    discord.remove("performance")
    aws.put_secret_value(SecretId=webhooks["performance"], SecretString=discord.url("rotated"))
    router.handler(events.sns_event(events.single_metric()), context)
    assert len(discord.accepted("rotated")) == 1


def test_a_removed_webhook_that_was_not_replaced_raises(router, webhooks, discord, context):
    discord.remove("performance")
    with pytest.raises(router.DeliveryError, match="webhook gone"):
        router.handler(events.sns_event(events.single_metric()), context)


def test_a_huge_alarm_is_truncated_to_discords_limits(router, webhooks, discord, context):
    alarm = events.single_metric()
    alarm["AlarmDescription"] = "@everyone " + "d" * 10_000
    alarm["NewStateReason"] = "r" * 10_000
    alarm["Trigger"]["Dimensions"] = [{"name": f"Dim{i}", "value": "v" * 200} for i in range(30)]
    router.handler(events.sns_event(alarm), context)
    payload = discord.accepted("performance")[0]
    assert discord_problems(payload) == []
    assert payload["allowed_mentions"] == {"parse": []}


def test_a_channel_without_a_webhook_falls_back_to_errors(router, webhooks, discord, context, monkeypatch):
    monkeypatch.delenv(router.ARN_VARIABLES["business"])
    router.handler(events.sns_event(events.no_description()), context)
    assert len(discord.accepted("errors")) == 1
