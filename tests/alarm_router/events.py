"""Real-shaped SNS events carrying CloudWatch alarm state changes, one per alarm kind."""

from __future__ import annotations

import json
from typing import Any

ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:us-west-2:{ACCOUNT}:sage-alerts"


def sns_event(message: dict[str, Any] | str, subject: str | None = None) -> dict[str, Any]:
    body = message if isinstance(message, str) else json.dumps(message)
    if subject is None and isinstance(message, dict):
        subject = f'{message["NewStateValue"]}: "{message["AlarmName"]}" in US West (Oregon)'
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "TopicArn": TOPIC,
                    "Subject": subject,
                    "Message": body,
                    "Timestamp": "2025-03-01T10:30:16.123Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0000.pem",
                    "UnsubscribeUrl": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def _alarm(
    name: str, state: str, old: str, description: str | None, reason: str, trigger: dict[str, Any]
) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "AlarmDescription": description,
        "AWSAccountId": ACCOUNT,
        "AlarmConfigurationUpdatedTimestamp": "2025-02-20T08:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": reason,
        "StateChangeTime": "2025-03-01T10:30:15.512+0000",
        "Region": "US West (Oregon)",
        "AlarmArn": f"arn:aws:cloudwatch:us-west-2:{ACCOUNT}:alarm:{name}",
        "OldStateValue": old,
        "OKActions": [TOPIC],
        "AlarmActions": [TOPIC],
        "InsufficientDataActions": [],
        "Trigger": trigger,
    }


def single_metric(state: str = "ALARM", old: str = "OK", name: str = "sage-backend-cpu-high") -> dict[str, Any]:
    return _alarm(
        name,
        state,
        old,
        "ECS CPU utilization is above 80%",
        "Threshold Crossed: 2 out of the last 2 datapoints [91.2 (01/03/25 10:25:00), 88.7 (01/03/25 10:20:00)] "
        "were greater than the threshold (80.0) (minimum 2 datapoints for OK -> ALARM transition).",
        {
            "MetricName": "CPUUtilization",
            "Namespace": "AWS/ECS",
            "StatisticType": "Statistic",
            "Statistic": "AVERAGE",
            "Unit": None,
            "Dimensions": [{"value": "sage", "name": "ClusterName"}, {"value": "backend", "name": "ServiceName"}],
            "Period": 300,
            "EvaluationPeriods": 2,
            "DatapointsToAlarm": 2,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 80.0,
            "TreatMissingData": "missing",
            "EvaluateLowSampleCountPercentile": "",
        },
    )


def percentile(state: str = "ALARM", old: str = "OK") -> dict[str, Any]:
    return _alarm(
        "sage-api-latency-p95",
        state,
        old,
        "Target response time P95 above 2 s",
        "Threshold Crossed: 1 datapoint [2.41 (01/03/25 10:29:00)] was greater than the threshold (2.0).",
        {
            "MetricName": "TargetResponseTime",
            "Namespace": "AWS/ApplicationELB",
            "StatisticType": "ExtendedStatistic",
            "ExtendedStatistic": "p95",
            "Unit": None,
            "Dimensions": [{"value": "app/sage-alb/50dc6c495c0c9188", "name": "LoadBalancer"}],
            "Period": 60,
            "EvaluationPeriods": 5,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 2.0,
            "TreatMissingData": "notBreaching",
            "EvaluateLowSampleCountPercentile": "evaluate",
        },
    )


def metric_math(state: str = "ALARM", old: str = "OK") -> dict[str, Any]:
    return _alarm(
        "sage-api-error-rate-high",
        state,
        old,
        "API 5XX error rate above 5 % over 1 minute",
        "Threshold Crossed: 1 datapoint [7.9 (01/03/25 10:29:00)] was greater than the threshold (5.0).",
        {
            "Period": 60,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 5.0,
            "TreatMissingData": "notBreaching",
            "EvaluateLowSampleCountPercentile": "",
            "Metrics": [
                {"Expression": "100 * errors / requests", "Id": "rate", "Label": "5XX rate (%)", "ReturnData": True},
                {
                    "Id": "errors",
                    "MetricStat": {
                        "Metric": {
                            "Dimensions": [{"value": "app/sage-alb/50dc6c495c0c9188", "name": "LoadBalancer"}],
                            "MetricName": "HTTPCode_Target_5XX_Count",
                            "Namespace": "AWS/ApplicationELB",
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
                {
                    "Id": "requests",
                    "MetricStat": {
                        "Metric": {
                            "Dimensions": [{"value": "app/sage-alb/50dc6c495c0c9188", "name": "LoadBalancer"}],
                            "MetricName": "RequestCount",
                            "Namespace": "AWS/ApplicationELB",
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
            ],
        },
    )


def no_description(state: str = "ALARM", old: str = "OK") -> dict[str, Any]:
    alarm = single_metric(state, old, name="sage-business-dau-drop")
    alarm["AlarmDescription"] = None
    return alarm


def composite(state: str = "ALARM", old: str = "OK") -> dict[str, Any]:
    alarm = _alarm(
        "sage-errors-backend-degraded",
        state,
        old,
        "CPU and 5XX together",
        "arn:aws:cloudwatch:us-west-2:123456789012:alarm:sage-backend-cpu-high transitioned to ALARM",
        {},
    )
    del alarm["Trigger"]
    alarm["AlarmRule"] = 'ALARM("sage-backend-cpu-high") AND ALARM("sage-api-error-rate-high")'
    return alarm
