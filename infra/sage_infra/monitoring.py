"""Alarms -> SNS `sage-alerts` (encrypted) -> the alarm-router Lambda -> Discord (spec 9).

The topic is encrypted with a customer-managed KMS key because CloudWatch alarms cannot
publish to a topic encrypted with the AWS-managed `aws/sns` key (its key policy does not let
cloudwatch.amazonaws.com use it).

The Lambda's code is `infra/alarm_router/handler.py`, a stdlib + boto3
`handler.handler(event, context)` that reads the three webhook URLs from the secrets named by
DISCORD_WEBHOOK_{ERRORS,PERFORMANCE,BUSINESS}_ARN. Its package (router_package.py) is that
directory's top-level `.py` files plus the app's `src/sage/notify/discord_limits.py`, taken as
an asset, so there is one file of Discord rules. The program stops if the handler is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from sage_infra import alarm_delivery
from sage_infra.alarms import (
    ALARMS,
    APP_SERVICE_DIMENSION,
    ERROR_RATE_EXPRESSION,
    ERROR_RATE_KEY,
    ERROR_RATE_METRICS,
    ERROR_RATE_PERIOD,
    ERROR_RATE_THRESHOLD_PERCENT,
    AlarmSpec,
    Channel,
    Target,
    alarm_name,
)
from sage_infra.common import child, policy_document, service_role
from sage_infra.router_package import router_files

ROUTER_RUNTIME = "python3.12"
ROUTER_HANDLER = "handler.handler"


def router_code(path: Path) -> pulumi.Archive:
    """The router's package (router_package.router_files) as a Lambda code archive."""
    return pulumi.AssetArchive({name: pulumi.FileAsset(str(f)) for name, f in router_files(path).items()})


@dataclass(frozen=True)
class MonitoringArgs:
    prefix: str
    topic_name: str
    tags: Mapping[str, str]
    account_id: pulumi.Input[str]
    metrics_environment: str
    log_retention_days: int
    cluster_name: pulumi.Input[str]
    api_service_name: pulumi.Input[str]
    ingestor_service_name: pulumi.Input[str]
    db_instance_identifiers: Sequence[pulumi.Input[str]]
    cache_node_ids: Sequence[str]
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    webhook_secret_arns: Mapping[Channel, pulumi.Input[str]]
    alarm_router_path: Path
    task_failure_rule_name: pulumi.Input[str]
    alarm_emails: Sequence[str] = ()


class Monitoring(pulumi.ComponentResource):
    topic: aws.sns.Topic
    fallback_topic: aws.sns.Topic
    dead_letter_queue: aws.sqs.Queue
    router: aws.lambda_.Function
    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:Monitoring", name, None, opts)
        tags = dict(args.tags)

        key = aws.kms.Key(
            f"{name}-topic-key",
            description=f"{args.topic_name}: SNS encryption usable by CloudWatch alarms",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy_document(
                [
                    {
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", args.account_id, ":root")},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "CloudWatchAlarmsPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                    },
                    {
                        # SNS writes what it cannot deliver into the encrypted dead-letter queue.
                        "Sid": "SnsRedriveToEncryptedQueue",
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                    },
                ]
            ),
            tags=tags,
            opts=child(self),
        )
        aws.kms.Alias(
            f"{name}-topic-key-alias", name=f"alias/{args.topic_name}", target_key_id=key.key_id, opts=child(self)
        )
        self.topic = aws.sns.Topic(
            f"{name}-topic", name=args.topic_name, kms_master_key_id=key.arn, tags=tags, opts=child(self)
        )

        self.key = key
        self.dead_letter_queue = alarm_delivery.dead_letter_queue(
            f"{name}-dlq", prefix=args.prefix, key_arn=key.arn, topic_arn=self.topic.arn, tags=tags, parent=self
        )
        self.fallback_topic = alarm_delivery.fallback_topic(
            f"{name}-fallback",
            topic_name=f"{args.topic_name}-fallback",
            key_arn=key.arn,
            emails=args.alarm_emails,
            tags=tags,
            parent=self,
        )
        self.alarms = self._alarms(name, args, tags)
        self.router = self._router(name, args, tags)
        self.alarms += alarm_delivery.path_alarms(
            f"{name}-path",
            prefix=args.prefix,
            function_name=self.router.name,
            queue_name=self.dead_letter_queue.name,
            actions=[self.fallback_topic.arn, self.topic.arn],
            tags=tags,
            parent=self,
        )
        self.register_outputs({"topic_arn": self.topic.arn})

    # --- alarms ------------------------------------------------------------------------------
    def _dimension_sets(self, spec: AlarmSpec, args: MonitoringArgs) -> list[tuple[str, dict[str, pulumi.Input[str]]]]:
        """(name suffix, dimensions) for each alarm the spec expands to."""
        if spec.target is Target.API_SERVICE:
            return [("", {"ClusterName": args.cluster_name, "ServiceName": args.api_service_name})]
        if spec.target is Target.INGESTOR_SERVICE:
            return [("", {"ClusterName": args.cluster_name, "ServiceName": args.ingestor_service_name})]
        if spec.target is Target.DB_INSTANCE:
            return [
                ("" if i == 0 else f"-replica-{i}", {"DBInstanceIdentifier": ident})
                for i, ident in enumerate(args.db_instance_identifiers)
            ]
        if spec.target is Target.CACHE_NODE:
            return [(f"-{node[-3:]}", {"CacheClusterId": node}) for node in args.cache_node_ids]
        if spec.target is Target.TARGET_GROUP:
            return [("", {"LoadBalancer": args.load_balancer_arn_suffix, "TargetGroup": args.target_group_arn_suffix})]
        if spec.target is Target.TASK_FAILURE_RULE:
            return [("", {"RuleName": args.task_failure_rule_name})]
        service = APP_SERVICE_DIMENSION[spec.target]
        return [("", {"service": service, "environment": args.metrics_environment, **dict(spec.extra_dimensions)})]

    def _alarms(self, name: str, args: MonitoringArgs, tags: dict[str, str]) -> list[aws.cloudwatch.MetricAlarm]:
        actions = [self.topic.arn]
        alarms: list[aws.cloudwatch.MetricAlarm] = []
        for spec in ALARMS:
            for suffix, dimensions in self._dimension_sets(spec, args):
                physical = alarm_name(args.prefix, spec.channel, spec.key) + suffix
                alarms.append(
                    aws.cloudwatch.MetricAlarm(
                        f"{name}-{spec.key}{suffix}",
                        name=physical,
                        alarm_description=f"[{spec.channel.value}] {spec.description}",
                        namespace=spec.namespace,
                        metric_name=spec.metric_name,
                        dimensions=dimensions,
                        statistic=spec.statistic,
                        extended_statistic=spec.extended_statistic,
                        period=spec.period,
                        evaluation_periods=spec.evaluation_periods,
                        threshold=spec.threshold,
                        comparison_operator=spec.comparison,
                        treat_missing_data=spec.treat_missing_data,
                        alarm_actions=actions,
                        ok_actions=actions,
                        tags=tags,
                        opts=child(self),
                    )
                )
        lb_dimensions = {"LoadBalancer": args.load_balancer_arn_suffix}
        queries: list[Any] = [
            {"id": "rate", "expression": ERROR_RATE_EXPRESSION, "label": "5XX error rate (%)", "return_data": True},
            *[
                {
                    "id": query_id,
                    "return_data": False,
                    "metric": {
                        "namespace": "AWS/ApplicationELB",
                        "metric_name": metric,
                        "dimensions": lb_dimensions,
                        "period": ERROR_RATE_PERIOD,
                        "stat": "Sum",
                    },
                }
                for query_id, metric in ERROR_RATE_METRICS.items()
            ],
        ]
        alarms.append(
            aws.cloudwatch.MetricAlarm(
                f"{name}-{ERROR_RATE_KEY}",
                name=alarm_name(args.prefix, Channel.ERRORS, ERROR_RATE_KEY),
                alarm_description=f"[{Channel.ERRORS.value}] API 5XX responses above 5% of requests over 1 minute",
                comparison_operator="GreaterThanThreshold",
                threshold=ERROR_RATE_THRESHOLD_PERCENT,
                evaluation_periods=1,
                treat_missing_data="notBreaching",
                metric_queries=queries,
                alarm_actions=actions,
                ok_actions=actions,
                tags=tags,
                opts=child(self),
            )
        )
        return alarms

    # --- the alarm router ----------------------------------------------------------------------
    def _router(self, name: str, args: MonitoringArgs, tags: dict[str, str]) -> aws.lambda_.Function:
        function_name = f"{args.prefix}-alarm-router"
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-router-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=child(self),
        )
        role = service_role(
            f"{name}-router-role",
            service="lambda.amazonaws.com",
            physical_name=f"{args.prefix}-alarm-router",
            description="Alarm router: write its logs, read the three Discord webhook secrets, dead-letter failures",
            tags=tags,
            parent=self,
        )
        webhook_arns = [args.webhook_secret_arns[c] for c in Channel]
        aws.iam.RolePolicy(
            f"{name}-router-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "WriteLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": pulumi.Output.concat(log_group.arn, ":*"),
                    },
                    {
                        "Sid": "ReadWebhooks",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": webhook_arns,
                    },
                    {
                        "Sid": "DeadLetterUndelivered",
                        "Effect": "Allow",
                        "Action": "sqs:SendMessage",
                        "Resource": self.dead_letter_queue.arn,
                    },
                    {
                        "Sid": "EncryptDeadLetters",
                        "Effect": "Allow",
                        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                        "Resource": self.key.arn,
                    },
                ]
            ),
            opts=child(self),
        )
        router = aws.lambda_.Function(
            f"{name}-router",
            name=function_name,
            description="CloudWatch alarms (via SNS) to the Discord channel each alarm names",
            runtime=ROUTER_RUNTIME,
            handler=ROUTER_HANDLER,
            code=router_code(args.alarm_router_path),
            role=role.arn,
            timeout=30,
            memory_size=128,
            environment={
                "variables": {
                    **{
                        f"DISCORD_WEBHOOK_{channel.value.upper()}_ARN": args.webhook_secret_arns[channel]
                        for channel in Channel
                    },
                    # Alarm names carry their channel (<prefix>-<channel>-<key>) in every stack.
                    "ALARM_ROUTES": json.dumps({f"{args.prefix}-{c.value}-": c.value for c in Channel}),
                }
            },
            tags=tags,
            opts=child(self, depends_on=[log_group]),
        )
        aws.lambda_.Permission(
            f"{name}-router-invoke",
            action="lambda:InvokeFunction",
            function=router.name,
            principal="sns.amazonaws.com",
            source_arn=self.topic.arn,
            opts=child(self),
        )
        aws.sns.TopicSubscription(
            f"{name}-router-subscription",
            topic=self.topic.arn,
            protocol="lambda",
            endpoint=router.arn,
            redrive_policy=alarm_delivery.redrive_policy(self.dead_letter_queue.arn),
            opts=child(self),
        )
        alarm_delivery.on_failure_destination(
            f"{name}-router-on-failure",
            function_name=router.name,
            queue_arn=self.dead_letter_queue.arn,
            parent=self,
        )
        return router
