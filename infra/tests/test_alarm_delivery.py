"""Alarms are never lost: dead-letter queue, redrive, alarms on the router, an e-mail fallback."""

from __future__ import annotations

import json

from sage_infra.alarm_delivery import DLQ_RETENTION_SECONDS, ROUTER_RETRIES
from scenarios import ALARM_EMAILS
from stack_record import Resource, StackRecord, as_list, statements


def queue(stack: StackRecord) -> Resource:
    return stack.one("sqs/queue")


def router(stack: StackRecord) -> Resource:
    return stack.one("lambda/function")


def topic(stack: StackRecord, suffix: str = "") -> Resource:
    name = ("sage-alerts" if stack.scenario.startswith("prod") else "sage-alerts-dev") + suffix
    return next(t for t in stack.of_type("sns/topic") if t["name"] == name)


def test_the_dead_letter_queue_is_encrypted_with_the_alert_key_and_keeps_two_weeks(prod: StackRecord) -> None:
    dlq = queue(prod)
    assert dlq["name"] == "sage-alarms-dlq"
    assert dlq["messageRetentionSeconds"] == DLQ_RETENTION_SECONDS == 1_209_600
    assert prod.resolve(dlq.refers_to("kmsMasterKeyId")) == prod.resolve(topic(prod).refers_to("kmsMasterKeyId"))


def test_the_router_sends_what_it_gives_up_on_to_the_queue(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        config = stack.one("lambda/functionEventInvokeConfig")
        assert config["functionName"] == router(stack)["name"]
        assert config["maximumRetryAttempts"] == ROUTER_RETRIES
        assert config["destinationConfig"]["onFailure"]["destination"] == queue(stack).state["arn"]


def test_the_router_may_write_to_the_queue_and_use_its_key(prod: StackRecord) -> None:
    (role,) = prod.resolve(router(prod).refers_to("role"))
    (policy,) = [p for p in prod.of_type("iam/rolePolicy") if p.refers_to("role") == [role.urn]]
    by_sid = {s["Sid"]: s for s in statements(policy.json("policy"))}
    assert by_sid["DeadLetterUndelivered"]["Action"] == "sqs:SendMessage"
    assert by_sid["DeadLetterUndelivered"]["Resource"] == queue(prod).state["arn"]
    (key,) = prod.resolve(queue(prod).refers_to("kmsMasterKeyId"))
    assert by_sid["EncryptDeadLetters"]["Resource"] == key.state["arn"]


def test_what_sns_cannot_hand_to_the_router_is_redriven_to_the_queue(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        (subscription,) = [s for s in stack.of_type("sns/topicSubscription") if s["protocol"] == "lambda"]
        assert json.loads(subscription["redrivePolicy"]) == {"deadLetterTargetArn": queue(stack).state["arn"]}


def test_only_the_alert_topic_may_redrive_into_the_queue(prod: StackRecord) -> None:
    policy = prod.one("sqs/queuePolicy")
    (statement,) = statements(policy.json("policy"))
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": topic(prod).state["arn"]}}


def test_sns_may_use_the_key_of_the_encrypted_queue(prod: StackRecord) -> None:
    (key,) = prod.resolve(queue(prod).refers_to("kmsMasterKeyId"))
    grants = {s["Sid"]: s for s in statements(key.json("policy"))}
    sns = grants["SnsRedriveToEncryptedQueue"]
    assert sns["Principal"] == {"Service": "sns.amazonaws.com"}
    assert set(sns["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_router_errors_throttles_and_dead_letters_alarm_by_email_and_discord(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        p = "sage" if stack.scenario.startswith("prod") else "sage-dev"
        by_name = {a["name"]: a for a in stack.of_type("cloudwatch/metricAlarm")}
        watched = {
            f"{p}-errors-alarm-router-errors": ("AWS/Lambda", "Errors", {"FunctionName": router(stack)["name"]}),
            f"{p}-errors-alarm-router-throttled": ("AWS/Lambda", "Throttles", {"FunctionName": router(stack)["name"]}),
            f"{p}-errors-alarms-undelivered": (
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": queue(stack)["name"]},
            ),
        }
        for name, (namespace, metric, dimensions) in watched.items():
            alarm = by_name[name]
            assert (alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == (namespace, metric, dimensions)
            assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)
            actions = set(as_list(alarm["alarmActions"]))
            assert actions == {topic(stack, "-fallback").state["arn"], topic(stack).state["arn"]}, name


def test_the_fallback_topic_is_email_only_encrypted_and_never_touches_the_router(prod: StackRecord) -> None:
    fallback = topic(prod, "-fallback")
    assert fallback["kmsMasterKeyId"]
    subscriptions = [s for s in prod.of_type("sns/topicSubscription") if s.refers_to("topic") == [fallback.urn]]
    assert {(s["protocol"], s["endpoint"]) for s in subscriptions} == {
        ("email", e.strip()) for e in ALARM_EMAILS.split(",")
    }
    fallback_arn = fallback.state["arn"]
    for alarm in prod.of_type("cloudwatch/metricAlarm"):
        if fallback_arn in as_list(alarm["alarmActions"]):
            assert "alarm-router" in alarm["name"] or "alarms-undelivered" in alarm["name"]
