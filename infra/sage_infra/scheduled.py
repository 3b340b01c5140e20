"""EventBridge runs the scheduled `sage db` tasks and watches them fail.

* `sage db backup` daily (spec 11.1, the AI guide's backup script) and `sage db verify-backup`
  weekly, each from its own rule with a role that may run only that task definition family.
  The target names the family without a revision, so RunTask starts its latest ACTIVE
  revision: the one the last deploy registered with its image (a pinned revision would run
  the image of the first `pulumi up` forever).
* A rule on ECS task state changes catches a backup or verification task that stops with a
  non-zero exit code or never starts (no image, no secret, no capacity). Such a task emits no
  app metric, so this rule is what the `db-task-failed` alarm counts (monitoring.py); the
  matching events are kept in a log group for the post-mortem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, policy_document, service_role


@dataclass(frozen=True)
class ScheduledTaskArgs:
    prefix: str
    tags: Mapping[str, str]
    region: str
    account_id: pulumi.Input[str]
    # Names the rule (<prefix>-db-<key>) and its role (<prefix>-<key>-scheduler).
    key: str
    description: str
    schedule_expression: str
    cluster: aws.ecs.Cluster
    task_definition: aws.ecs.TaskDefinition
    execution_role: aws.iam.Role
    task_role: aws.iam.Role
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    platform_version: str


def family_arn_prefix(region: str, account_id: pulumi.Input[str], family: pulumi.Input[str]) -> pulumi.Output[str]:
    """`arn:...:task-definition/<family>:` - every revision of one family, and no other family."""
    return pulumi.Output.concat("arn:aws:ecs:", region, ":", account_id, ":task-definition/", family, ":")


def run_task_resource(region: str, account_id: pulumi.Input[str], family: pulumi.Input[str]) -> pulumi.Output[str]:
    """The `ecs:RunTask` resource for every revision of one family (`<family>:*`).

    ECS authorizes a RunTask that names only the family against the revision it resolves
    to, so the policy must name revisions; the bare family ARN no longer matches (AWS changed
    this in 2024).
    """
    return pulumi.Output.concat(family_arn_prefix(region, account_id, family), "*")


class ScheduledTask(pulumi.ComponentResource):
    rule: aws.cloudwatch.EventRule

    def __init__(self, name: str, args: ScheduledTaskArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:ScheduledTask", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)
        role = service_role(
            f"{name}-role",
            service="events.amazonaws.com",
            physical_name=f"{p}-{args.key}-scheduler",
            description=f"EventBridge: run the {args.key} task",
            tags=tags,
            parent=self,
            conditions={"StringEquals": {"aws:SourceAccount": args.account_id}},
        )
        aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "RunTask",
                        "Effect": "Allow",
                        "Action": "ecs:RunTask",
                        "Resource": run_task_resource(args.region, args.account_id, args.task_definition.family),
                        "Condition": {"ArnEquals": {"ecs:cluster": args.cluster.arn}},
                    },
                    {
                        "Sid": "TagTask",
                        "Effect": "Allow",
                        "Action": "ecs:TagResource",
                        "Resource": pulumi.Output.concat(
                            "arn:aws:ecs:", args.region, ":", args.account_id, ":task/", args.cluster.name, "/*"
                        ),
                        "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
                    },
                    {
                        "Sid": "PassTaskRoles",
                        "Effect": "Allow",
                        "Action": "iam:PassRole",
                        "Resource": [args.execution_role.arn, args.task_role.arn],
                        "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                    },
                ]
            ),
            opts=child(self),
        )
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=f"{p}-db-{args.key}",
            description=args.description,
            schedule_expression=args.schedule_expression,
            tags=tags,
            opts=child(self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=self.rule.name,
            arn=args.cluster.arn,
            role_arn=role.arn,
            ecs_target={
                # The family, not this program's revision: deploys register newer ones.
                "task_definition_arn": args.task_definition.arn_without_revision,
                "task_count": 1,
                "launch_type": "FARGATE",
                "platform_version": args.platform_version,
                "propagate_tags": "TASK_DEFINITION",
                "network_configuration": {
                    "subnets": list(args.subnet_ids),
                    "security_groups": [args.security_group_id],
                    "assign_public_ip": False,
                },
            },
            retry_policy={"maximum_retry_attempts": 2, "maximum_event_age_in_seconds": 3600},
            opts=child(self),
        )
        self.register_outputs({"rule": self.rule.name})


@dataclass(frozen=True)
class TaskFailureWatchArgs:
    prefix: str
    tags: Mapping[str, str]
    region: str
    account_id: pulumi.Input[str]
    cluster: aws.ecs.Cluster
    task_definitions: Sequence[aws.ecs.TaskDefinition]
    log_retention_days: int


def task_failure_pattern(
    cluster_arn: pulumi.Input[str], family_prefixes: Sequence[pulumi.Input[str]]
) -> pulumi.Output[str]:
    """ECS "task stopped" events of these families: a non-zero exit code, or the task never started."""
    pattern: dict[str, Any] = {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [cluster_arn],
            "lastStatus": ["STOPPED"],
            "taskDefinitionArn": [{"prefix": prefix} for prefix in family_prefixes],
            "$or": [
                {"containers": {"exitCode": [{"anything-but": 0}]}},
                # A task that never started has no exit code at all.
                {"stopCode": ["TaskFailedToStart"]},
            ],
        },
    }
    return pulumi.Output.json_dumps(pattern)


class TaskFailureWatch(pulumi.ComponentResource):
    rule: aws.cloudwatch.EventRule
    log_group: aws.cloudwatch.LogGroup

    def __init__(self, name: str, args: TaskFailureWatchArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:TaskFailureWatch", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)
        families = [family_arn_prefix(args.region, args.account_id, td.family) for td in args.task_definitions]
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=f"{p}-db-task-failed",
            description="A scheduled sage db task (backup, verify-backup) failed or never started",
            event_pattern=task_failure_pattern(args.cluster.arn, families),
            tags=tags,
            opts=child(self),
        )
        # EventBridge writes to log groups named /aws/events/...
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/events/{p}-db-task-failures",
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=child(self),
        )
        aws.cloudwatch.LogResourcePolicy(
            f"{name}-logs-policy",
            policy_name=f"{p}-db-task-failures",
            policy_document=policy_document(
                [
                    {
                        "Sid": "EventBridgeWritesTaskFailures",
                        "Effect": "Allow",
                        "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": pulumi.Output.concat(self.log_group.arn, ":*"),
                    }
                ]
            ),
            opts=child(self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=self.rule.name,
            arn=self.log_group.arn,
            opts=child(self),
        )
        self.register_outputs({"rule": self.rule.name})
