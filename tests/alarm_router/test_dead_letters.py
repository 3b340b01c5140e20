"""An alarm Discord refuses is not lost: after Lambda's retries it waits in the encrypted
dead-letter queue (moto SQS on 127.0.0.1), whole, and can be replayed once Discord is back."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from tests.alarm_router import events
from tests.alarm_router.lambda_async import invoke_async

ROUTER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:sage-alarm-router"
RETRIES = 2  # infra/sage_infra/alarm_delivery.py ROUTER_RETRIES


@pytest.fixture
def dead_letters(aws) -> tuple[Any, str]:
    """A KMS-encrypted queue, as the stack declares it."""
    key = boto3.client("kms").create_key(Description="sage-alerts")["KeyMetadata"]["Arn"]
    sqs = boto3.client("sqs")
    url = sqs.create_queue(
        QueueName=f"sage-alarms-dlq-{uuid.uuid4().hex[:6]}",
        Attributes={"KmsMasterKeyId": key, "MessageRetentionPeriod": "1209600"},
    )["QueueUrl"]
    return sqs, url


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_an_alarm_discord_keeps_refusing_ends_in_the_dead_letter_queue(
    router, webhooks, discord, context, sleeps, dead_letters
):
    sqs, url = dead_letters
    discord.script("errors", *[("status", 500)] * 100)
    event = events.sns_event(events.metric_math())

    invoke_async(router.handler, event, context, retries=RETRIES, sqs=sqs, queue_url=url, function_arn=ROUTER_ARN)

    assert discord.accepted() == []
    assert discord.statuses("errors") == [500] * (router.MAX_ATTEMPTS * (1 + RETRIES))
    (record,) = receive_all(sqs, url)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorType"] == "DeliveryError"
    assert "500" in record["responsePayload"]["errorMessage"]
    assert "t0ken-SECRET" not in json.dumps(record), "the webhook URL never reaches the queue"
    assert record["requestPayload"] == event
    alarm = json.loads(record["requestPayload"]["Records"][0]["Sns"]["Message"])
    assert alarm["AlarmName"] == "sage-api-error-rate-high" and alarm["NewStateValue"] == "ALARM"


def test_a_dead_letter_replayed_after_discord_recovers_is_delivered(
    router, webhooks, discord, context, sleeps, dead_letters
):
    sqs, url = dead_letters
    discord.script("errors", *[("status", 500)] * (router.MAX_ATTEMPTS * (1 + RETRIES)))
    event = events.sns_event(events.metric_math())
    invoke_async(router.handler, event, context, retries=RETRIES, sqs=sqs, queue_url=url, function_arn=ROUTER_ARN)
    (record,) = receive_all(sqs, url)

    # docs/runbooks/disaster-recovery.md: invoke the router with the record's requestPayload.
    result = router.handler(record["requestPayload"], context)

    assert result["delivered"] == [{"alarm": "sage-api-error-rate-high", "channel": "errors"}]
    assert len(discord.accepted("errors")) == 1


def test_an_alarm_delivered_on_a_retry_leaves_the_queue_empty(router, webhooks, discord, context, sleeps, dead_letters):
    sqs, url = dead_letters
    discord.script("errors", *[("status", 500)] * router.MAX_ATTEMPTS)  # the first invocation fails
    invoke_async(
        router.handler,
        events.sns_event(events.metric_math()),
        context,
        retries=RETRIES,
        sqs=sqs,
        queue_url=url,
        function_arn=ROUTER_ARN,
    )
    assert len(discord.accepted("errors")) == 1
    assert receive_all(sqs, url) == []
