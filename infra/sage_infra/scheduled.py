"""EventBridge runs `sage db backup` on a schedule (spec 11.1, AI guide's backup script)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, policy_document, service_role


@dataclass(frozen=True)
class ScheduledBackupArgs:
    prefix: str
    tags: Mapping[str, str]
    region: str
    account_id: pulumi.Input[str]
    schedule_expression: str
    cluster: aws.ecs.Cluster
    task_definition: aws.ecs.TaskDefinition
    execution_role: aws.iam.Role
    task_role: aws.iam.Role
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    platform_version: str


class ScheduledBackup(pulumi.ComponentResource):
    rule: aws.cloudwatch.EventRule

    def __init__(self, name: str, args: ScheduledBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:ScheduledBackup", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)
        family_arn = pulumi.Output.concat(
            "arn:aws:ecs:", args.region, ":", args.account_id, ":task-definition/", args.task_definition.family, ":*"
        )
        role = service_role(
            f"{name}-role",
            service="events.amazonaws.com",
            physical_name=f"{p}-backup-scheduler",
            description="EventBridge: run the backup task",
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
                        "Sid": "RunBackupTask",
                        "Effect": "Allow",
                        "Action": "ecs:RunTask",
                        "Resource": family_arn,
                        "Condition": {"ArnEquals": {"ecs:cluster": args.cluster.arn}},
                    },
                    {
                        "Sid": "TagBackupTask",
                        "Effect": "Allow",
                        "Action": "ecs:TagResource",
                        "Resource": pulumi.Output.concat(
                            "arn:aws:ecs:", args.region, ":", args.account_id, ":task/", args.cluster.name, "/*"
                        ),
                        "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
                    },
                    {
                        "Sid": "PassBackupRoles",
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
            name=f"{p}-db-backup",
            description="Daily logical backup of PostgreSQL to S3 (sage db backup)",
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
                "task_definition_arn": args.task_definition.arn,
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
