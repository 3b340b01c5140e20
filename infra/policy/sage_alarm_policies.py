"""The alarm path loses nothing: a stack policy over SNS -> Lambda subscriptions.

Every Lambda subscribed to an SNS topic must have (1) a redrive policy on the subscription (what
SNS cannot hand to the function lands in a queue), (2) an on-failure destination for its
asynchronous invocations (what the function gives up on lands in a queue), and (3) an alarm on
its `Errors` metric, so a failing router is noticed without the router.
"""

from __future__ import annotations

import json
from typing import Any

from policy_common import LAMBDA, MANDATORY, deps, of_type
from pulumi_policy import ReportViolation, StackValidationArgs, StackValidationPolicy

SNS_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SQS_QUEUE = "aws:sqs/queue:Queue"


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _alarms_never_lost(args: StackValidationArgs, report: ReportViolation) -> None:
    resources = list(args.resources)
    subscribed: dict[str, Any] = {}
    for subscription in of_type(resources, SNS_SUBSCRIPTION):
        if subscription.props.get("protocol") != "lambda":
            continue
        if not _json(subscription.props.get("redrivePolicy")).get("deadLetterTargetArn"):
            report("An SNS subscription to a Lambda needs a redrive policy (deadLetterTargetArn).", subscription.urn)
        for function in deps(subscription, "endpoint"):
            if function.resource_type == LAMBDA:
                subscribed[function.urn] = function
    for urn, function in subscribed.items():
        configs = [c for c in of_type(resources, INVOKE_CONFIG) if urn in {f.urn for f in deps(c, "functionName")}]
        destinations = [
            ((c.props.get("destinationConfig") or {}).get("onFailure") or {}).get("destination") for c in configs
        ]
        if not any(destinations):
            report(f"Lambda {function.name} takes SNS events but has no on-failure destination.", urn)
        watched = [
            a
            for a in of_type(resources, METRIC_ALARM)
            if a.props.get("metricName") == "Errors"
            and a.props.get("namespace") == "AWS/Lambda"
            and urn in {d.urn for d in deps(a, "dimensions")}
        ]
        if not watched:
            report(f"Lambda {function.name} takes SNS events but no alarm watches its Errors.", urn)


alarms_never_lost = StackValidationPolicy(
    name="alarms-never-lost",
    description="SNS -> Lambda subscriptions redrive, the Lambda has an on-failure destination and an Errors alarm.",
    enforcement_level=MANDATORY,
    validate=_alarms_never_lost,
)
