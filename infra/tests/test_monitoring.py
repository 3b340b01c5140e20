"""Alarms, the encrypted `sage-alerts` topic and the alarm-router Lambda (spec 9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from sage_infra.config import INFRA_DIR, from_values
from sage_infra.monitoring import router_code
from sage_infra.router_package import APP_DISCORD_LIMITS, RouterPackageError
from scenarios import REQUIRED
from stack_record import Resource, StackRecord, as_list, statements

APP = {"service": "api", "environment": "production"}
BACKUP = {"service": "backup", "environment": "production"}
# name: (namespace, metric, statistic, period, evaluation periods, comparison, threshold, dimensions)
EXPECTED: dict[str, tuple[str, str, str, int, int, str, float, dict[str, str]]] = {
    "sage-performance-api-cpu-high": (
        "AWS/ECS", "CPUUtilization", "Average", 300, 2, ">", 80,
        {"ClusterName": "sage-cluster", "ServiceName": "sage-backend"},
    ),
    "sage-performance-rds-cpu-high": (
        "AWS/RDS", "CPUUtilization", "Average", 300, 2, ">", 80, {"DBInstanceIdentifier": "sage-postgres"},
    ),
    "sage-performance-valkey-memory-high-001": (
        "AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "Average", 300, 1, ">", 80, {"CacheClusterId": "sage-valkey-001"},
    ),
    "sage-performance-valkey-memory-high-002": (
        "AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "Average", 300, 1, ">", 80, {"CacheClusterId": "sage-valkey-002"},
    ),
    "sage-performance-api-p95-latency": (
        "AWS/ApplicationELB", "TargetResponseTime", "p95", 60, 5, ">", 2,
        {"LoadBalancer": "app/sage-alb/50dc6c495c0c9188", "TargetGroup": "targetgroup/sage-backend-tg/943f017f100becff"},
    ),
    "sage-performance-first-token-latency": ("Sage", "FirstTokenLatency", "p95", 300, 1, ">", 5000, APP),
    "sage-errors-hallucination-rate": (
        "Sage", "HallucinationRate", "Average", 900, 1, ">", 1, {**APP, "level": "response"},
    ),
    "sage-performance-llm-queue-full": ("Sage", "LLMQueueSize", "Maximum", 60, 3, ">=", 1000, APP),
    "sage-errors-db-pool-high": ("Sage", "DBPoolUsage", "Average", 300, 1, ">", 90, APP),
    "sage-errors-backup-failed": ("Sage", "BackupFailure", "Sum", 3600, 1, ">", 0, BACKUP),
    "sage-errors-backup-overdue": ("Sage", "BackupSuccess", "Sum", 26 * 3600, 1, "<", 1, BACKUP),
    "sage-errors-backup-verify-failed": ("Sage", "BackupVerifyFailure", "Sum", 3600, 1, ">", 0, BACKUP),
    "sage-errors-db-task-failed": (
        "AWS/Events", "TriggeredRules", "Sum", 300, 1, ">", 0, {"RuleName": "sage-db-task-failed"},
    ),
    "sage-errors-feed-stale": (
        "Sage", "FeedStaleSymbols", "Maximum", 60, 5, ">", 0, {"service": "ingestor", "environment": "production"},
    ),
}  # fmt: skip
OPERATORS = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
}


def alarms(stack: StackRecord) -> dict[str, Resource]:
    return {a["name"]: a for a in stack.of_type("cloudwatch/metricAlarm")}


def topic(stack: StackRecord) -> Resource:
    (main,) = [t for t in stack.of_type("sns/topic") if not t["name"].endswith("-fallback")]
    return main


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_alarm_watches_the_right_metric_and_threshold(prod: StackRecord, name: str) -> None:
    namespace, metric, stat, period, periods, op, threshold, dimensions = EXPECTED[name]
    alarm = alarms(prod)[name]
    assert (alarm["namespace"], alarm["metricName"]) == (namespace, metric)
    assert alarm.get("statistic", alarm.get("extendedStatistic")) == stat
    assert (alarm["period"], alarm["evaluationPeriods"]) == (period, periods)
    assert (alarm["comparisonOperator"], alarm["threshold"]) == (OPERATORS[op], threshold)
    assert alarm["dimensions"] == dimensions


# The app's metric table (docs/readme-parts/observability.md): each metric's own dimensions.
# EMF publishes every metric under {service, environment} and, if it has dimensions, also
# under {service, environment, <all of them>}; CloudWatch matches dimension sets exactly.
APP_METRIC_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "FirstTokenLatency": ("provider", "cached"),
    "HallucinationRate": ("level",),
    "LLMQueueSize": (),
    "DBPoolUsage": (),
    "RequestLatency": ("route", "method"),
    "FeedStaleSymbols": ("exchange",),
    "BackupSuccess": (),
    "BackupFailure": (),
    "BackupVerifyFailure": (),
}


def test_app_metric_alarms_watch_a_dimension_set_the_app_publishes(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        app_alarms = [a for a in alarms(stack).values() if a.get("namespace") == "Sage"]
        assert {a["metricName"] for a in app_alarms} == set(APP_METRIC_DIMENSIONS)
        for alarm in app_alarms:
            own = APP_METRIC_DIMENSIONS[alarm["metricName"]]
            published = [{"service", "environment"}] + ([{"service", "environment", *own}] if own else [])
            assert set(alarm["dimensions"]) in published, alarm["name"]


def test_hallucination_alarm_reads_the_response_level_rate_not_an_average_of_both(prod: StackRecord) -> None:
    dimensions = alarms(prod)["sage-errors-hallucination-rate"]["dimensions"]
    assert dimensions["level"] == "response" and dimensions["service"] == "api"


def test_a_missing_backup_alarms_even_when_nothing_reports_a_failure(prod: StackRecord) -> None:
    overdue = alarms(prod)["sage-errors-backup-overdue"]
    assert overdue["treatMissingData"] == "breaching", "no BackupSuccess at all (task never started) must alarm"
    assert overdue["period"] * overdue["evaluationPeriods"] == 26 * 3600
    assert overdue["period"] * overdue["evaluationPeriods"] <= 7 * 24 * 3600, "CloudWatch's evaluation limit"


def test_task_failure_alarm_counts_the_rule_that_matches_failed_db_tasks(prod: StackRecord) -> None:
    alarm = alarms(prod)["sage-errors-db-task-failed"]
    (rule,) = prod.resolve(alarm.refers_to("dimensions"))
    assert rule["name"] == alarm["dimensions"]["RuleName"]
    assert "eventPattern" in rule.inputs


def test_api_error_alarm_is_a_rate_not_a_count(prod: StackRecord) -> None:
    alarm = alarms(prod)["sage-errors-api-5xx-rate"]
    assert "metricName" not in alarm.inputs, "metric math, not the spec's raw 5XXError count"
    assert (alarm["comparisonOperator"], alarm["threshold"], alarm["evaluationPeriods"]) == (
        "GreaterThanThreshold",
        5,
        1,
    )
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    expression = queries["rate"]
    assert expression["returnData"] is True
    assert "100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests" in expression["expression"]
    metrics = {qid: q["metric"] for qid, q in queries.items() if qid != "rate"}
    assert {m["metricName"] for m in metrics.values()} == {
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
    }
    for m in metrics.values():
        assert (m["namespace"], m["period"], m["stat"]) == ("AWS/ApplicationELB", 60, "Sum")
        assert m["dimensions"] == {"LoadBalancer": "app/sage-alb/50dc6c495c0c9188"}


def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        arn = topic(stack).state["arn"]
        for name, alarm in alarms(stack).items():
            assert arn in alarm["alarmActions"], name
            assert alarm["okActions"] == alarm["alarmActions"], name


def test_every_alarm_names_its_discord_channel(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        prefix = "sage" if stack.scenario.startswith("prod") else "sage-dev"
        for name, alarm in alarms(stack).items():
            channel = name.removeprefix(f"{prefix}-").split("-")[0]
            assert channel in ("errors", "performance", "business"), name
            assert alarm["alarmDescription"].startswith(f"[{channel}] ")


def test_replicas_get_their_own_cpu_alarm(scale: StackRecord) -> None:
    watched = {
        a["dimensions"]["DBInstanceIdentifier"]
        for a in alarms(scale).values()
        if a.get("metricName") == "CPUUtilization" and a["namespace"] == "AWS/RDS"
    }
    assert watched == {"sage-postgres", "sage-postgres-replica-1", "sage-postgres-replica-2"}


def test_alerts_topic_is_encrypted_with_a_key_cloudwatch_may_use(prod: StackRecord) -> None:
    sns = topic(prod)
    assert sns["name"] == "sage-alerts"
    (key,) = prod.resolve(sns.refers_to("kmsMasterKeyId"))
    assert key["enableKeyRotation"] is True
    grants = {s["Sid"]: s for s in statements(key.json("policy"))}
    cloudwatch = grants["CloudWatchAlarmsPublish"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_other_stacks_get_their_own_topic(dev: StackRecord) -> None:
    assert topic(dev)["name"] == "sage-alerts-dev"


# --- the alarm router ------------------------------------------------------------------------


def router(stack: StackRecord) -> Resource:
    return stack.one("lambda/function")


def webhook_arns(stack: StackRecord) -> dict[str, str]:
    return {
        channel: next(
            s.state["arn"] for s in stack.of_type("secretsmanager/secret") if s["name"].endswith(f"webhook-{channel}")
        )
        for channel in ("errors", "performance", "business")
    }


def test_router_is_a_python_handler_subscribed_to_the_topic(prod: StackRecord) -> None:
    fn = router(prod)
    assert (fn["runtime"], fn["handler"]) == ("python3.12", "handler.handler")
    (subscription,) = [s for s in prod.of_type("sns/topicSubscription") if s["protocol"] == "lambda"]
    assert subscription["protocol"] == "lambda"
    assert prod.resolve(subscription.refers_to("topic")) == [topic(prod)]
    assert prod.resolve(subscription.refers_to("endpoint")) == [fn]
    permission = prod.one("lambda/permission")
    assert (permission["principal"], permission["action"]) == ("sns.amazonaws.com", "lambda:InvokeFunction")
    assert permission["sourceArn"] == topic(prod).state["arn"]


def test_router_gets_the_three_webhook_secret_arns(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        variables: dict[str, Any] = router(stack)["environment"]["variables"]
        arns = webhook_arns(stack)
        assert variables["DISCORD_WEBHOOK_ERRORS_ARN"] == arns["errors"]
        assert variables["DISCORD_WEBHOOK_PERFORMANCE_ARN"] == arns["performance"]
        assert variables["DISCORD_WEBHOOK_BUSINESS_ARN"] == arns["business"]


def test_router_routes_by_this_stacks_alarm_name_prefixes(dev: StackRecord) -> None:
    routes = json.loads(router(dev)["environment"]["variables"]["ALARM_ROUTES"])
    assert routes == {
        "sage-dev-errors-": "errors",
        "sage-dev-performance-": "performance",
        "sage-dev-business-": "business",
    }


def test_router_may_read_exactly_the_webhook_secrets(prod: StackRecord) -> None:
    (role,) = prod.resolve(router(prod).refers_to("role"))
    (policy,) = [p for p in prod.of_type("iam/rolePolicy") if p.refers_to("role") == [role.urn]]
    by_sid = {s["Sid"]: s for s in statements(policy.json("policy"))}
    assert set(by_sid) == {"WriteLogs", "ReadWebhooks", "DeadLetterUndelivered", "EncryptDeadLetters"}
    assert by_sid["ReadWebhooks"]["Action"] == "secretsmanager:GetSecretValue"
    assert set(as_list(by_sid["ReadWebhooks"]["Resource"])) == set(webhook_arns(prod).values())


def test_router_logs_are_retained(prod: StackRecord) -> None:
    group = next(g for g in prod.of_type("cloudwatch/logGroup") if g["name"] == "/aws/lambda/sage-alarm-router")
    assert group["retentionInDays"] == 30


def test_router_package_is_the_handler_and_the_apps_discord_rules(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        assert router(stack)["code"] == {
            "archive": "assets",
            "assets": {
                "discord_limits.py": {"asset": "file", "path": str(APP_DISCORD_LIMITS)},
                "handler.py": {"asset": "file", "path": str(INFRA_DIR / "alarm_router" / "handler.py")},
            },
        }


def test_router_package_leaves_out_bytecode_and_everything_but_top_level_modules(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def handler(event, context): ...\n")
    (tmp_path / "formatting.py").write_text("WIDTH = 80\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"\x00")
    (tmp_path / "handler.pyc").write_bytes(b"\x00")
    (tmp_path / "notes.txt").write_text("scratch\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_handler.py").write_text("")
    archive = router_code(tmp_path)
    assert isinstance(archive, pulumi.AssetArchive)
    assert set(archive.assets) == {"handler.py", "formatting.py", "discord_limits.py"}
    for name, asset in archive.assets.items():
        expected = APP_DISCORD_LIMITS if name == "discord_limits.py" else tmp_path / name
        assert isinstance(asset, pulumi.FileAsset) and asset.path == str(expected)


def test_a_copy_of_the_discord_rules_in_the_router_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def handler(event, context): ...\n")
    (tmp_path / "discord_limits.py").write_text("CONTENT_LIMIT = 2000\n")
    with pytest.raises(RouterPackageError, match=r"discord_limits\.py, which the package takes from the app"):
        router_code(tmp_path)


def test_a_router_directory_without_handler_py_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RouterPackageError, match=r"has no handler\.py"):
        router_code(tmp_path)


def test_router_directory_defaults_to_infra_alarm_router() -> None:
    assert from_values(
        dict(REQUIRED, phase="mvp", appDomain="a.example.com", apiDomain="b.example.com"), "prod"
    ).alarm_router_path == (INFRA_DIR / "alarm_router")
