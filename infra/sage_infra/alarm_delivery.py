"""What keeps an alarm from being lost between SNS and Discord.

Without these, SNS retries a failing Lambda invocation, Lambda retries the asynchronous event
twice, and then the alarm is dropped; and nothing tells anyone the router is broken, since
the router is the only way to Discord. So:

* one encrypted SQS dead-letter queue (`<prefix>-alarms-dlq`, 14 days) takes both what the
  Lambda gives up on (its on-failure destination, after `ROUTER_RETRIES` retries, the event
  and the error in Lambda's destination record) and what SNS could not hand to the Lambda at
  all (the subscription's redrive policy);
* three alarms watch the path itself: the router's `Errors`, its `Throttles` and the queue's
  depth. They publish to a separate fallback topic with e-mail subscriptions from stack
  config (`alarmEmails`), which depends on neither the Lambda nor Discord, and also to the
  main topic (Discord, when it works).

Both queues and the fallback topic use the alert topic's customer-managed key; its key policy
lets CloudWatch (alarms) and SNS (redrive into the encrypted queue) use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, policy_document

DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum: two weeks to notice and replay
ROUTER_RETRIES = 2  # Lambda's asynchronous retries before the on-failure destination
ROUTER_MAX_EVENT_AGE_SECONDS = 6 * 3600  # an alarm older than this is history, not news


@dataclass(frozen=True)
class PathAlarm:
    key: str
    description: str
    namespace: str
    metric_name: str
    statistic: str


# Keys carry the errors channel in their names like every alarm (<prefix>-errors-<key>).
PATH_ALARMS = (
    PathAlarm(
        "alarm-router-errors", "The alarm router failed to deliver an alarm to Discord", "AWS/Lambda", "Errors", "Sum"
    ),
    PathAlarm("alarm-router-throttled", "The alarm router was throttled", "AWS/Lambda", "Throttles", "Sum"),
    PathAlarm(
        "alarms-undelivered",
        "Alarms wait in the dead-letter queue: they never reached Discord",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    ),
)


def dead_letter_queue(
    name: str,
    *,
    prefix: str,
    key_arn: pulumi.Input[str],
    topic_arn: pulumi.Input[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.sqs.Queue:
    """The encrypted queue that keeps undelivered alarms; SNS (this topic only) may write to it."""
    queue = aws.sqs.Queue(
        name,
        name=f"{prefix}-alarms-dlq",
        kms_master_key_id=key_arn,
        kms_data_key_reuse_period_seconds=300,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        tags=dict(tags),
        opts=child(parent),
    )
    aws.sqs.QueuePolicy(
        f"{name}-policy",
        queue_url=queue.url,
        policy=policy_document(
            [
                {
                    "Sid": "TopicRedrive",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue.arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ]
        ),
        opts=child(parent),
    )
    return queue


def on_failure_destination(
    name: str, *, function_name: pulumi.Input[str], queue_arn: pulumi.Input[str], parent: pulumi.Resource
) -> aws.lambda_.FunctionEventInvokeConfig:
    return aws.lambda_.FunctionEventInvokeConfig(
        name,
        function_name=function_name,
        maximum_retry_attempts=ROUTER_RETRIES,
        maximum_event_age_in_seconds=ROUTER_MAX_EVENT_AGE_SECONDS,
        destination_config={"on_failure": {"destination": queue_arn}},
        opts=child(parent),
    )


def redrive_policy(queue_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"deadLetterTargetArn": queue_arn})


def fallback_topic(
    name: str,
    *,
    topic_name: str,
    key_arn: pulumi.Input[str],
    emails: Sequence[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.sns.Topic:
    """E-mail only: each address confirms its subscription once (AWS sends the link)."""
    topic = aws.sns.Topic(name, name=topic_name, kms_master_key_id=key_arn, tags=dict(tags), opts=child(parent))
    for index, email in enumerate(emails):
        aws.sns.TopicSubscription(
            f"{name}-email-{index}", topic=topic.arn, protocol="email", endpoint=email, opts=child(parent)
        )
    return topic


def path_alarms(
    name: str,
    *,
    prefix: str,
    function_name: pulumi.Input[str],
    queue_name: pulumi.Input[str],
    actions: Sequence[pulumi.Input[str]],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> list[aws.cloudwatch.MetricAlarm]:
    alarms = []
    for spec in PATH_ALARMS:
        dimensions = {"QueueName": queue_name} if spec.namespace == "AWS/SQS" else {"FunctionName": function_name}
        alarms.append(
            aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                name=f"{prefix}-errors-{spec.key}",
                alarm_description=f"[errors] {spec.description}",
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions=dimensions,
                statistic=spec.statistic,
                period=60 if spec.namespace == "AWS/Lambda" else 300,
                evaluation_periods=1,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=list(actions),
                ok_actions=list(actions),
                tags=dict(tags),
                opts=child(parent),
            )
        )
    return alarms
