"""Least-privilege roles for the ECS workloads (spec 12.1).

Each workload gets its own execution role (what ECS needs to start it: pull the image, write
its log group, read exactly the secrets its task definition references) and its own task role
(what the running code may call; empty unless the code calls AWS). No statement grants a
wildcard action, and data actions name their resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, policy_document, service_role

ECS_TASKS = "ecs-tasks.amazonaws.com"


def ecs_trust_conditions(account_id: pulumi.Input[str], region: str) -> dict[str, Any]:
    return {
        "StringEquals": {"aws:SourceAccount": account_id},
        "ArnLike": {"aws:SourceArn": pulumi.Output.concat("arn:aws:ecs:", region, ":", account_id, ":*")},
    }


def execution_role(
    name: str,
    *,
    physical_name: str,
    repository_arn: pulumi.Input[str],
    log_group_arn: pulumi.Input[str],
    secret_arns: Sequence[pulumi.Input[str]],
    account_id: pulumi.Input[str],
    region: str,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    role = service_role(
        name,
        service=ECS_TASKS,
        physical_name=physical_name,
        description="ECS execution: pull the image, write logs, read this workload's secrets",
        tags=tags,
        parent=parent,
        conditions=ecs_trust_conditions(account_id, region),
    )
    statements: list[dict[str, Any]] = [
        # GetAuthorizationToken has no resource-level permissions; it grants no image access.
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Sid": "PullImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            "Resource": repository_arn,
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": pulumi.Output.concat(log_group_arn, ":*"),
        },
    ]
    if secret_arns:
        statements.append(
            {
                "Sid": "ReadSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": list(secret_arns),
            }
        )
    aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(statements), opts=child(parent))
    return role


def task_role(
    name: str,
    *,
    physical_name: str,
    description: str,
    statements: Sequence[Mapping[str, Any]],
    account_id: pulumi.Input[str],
    region: str,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """The running code's identity; with no statements it can call nothing."""
    role = service_role(
        name,
        service=ECS_TASKS,
        physical_name=physical_name,
        description=description,
        tags=tags,
        parent=parent,
        conditions=ecs_trust_conditions(account_id, region),
    )
    if statements:
        aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(list(statements)), opts=child(parent))
    return role


def _list_prefix(bucket_arn: pulumi.Input[str], prefix: str, sid: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn,
        "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}},
    }


def backup_bucket_statements(bucket_arn: pulumi.Input[str], prefix: str) -> list[dict[str, Any]]:
    """What `sage db backup` (and `sage db migrate`, which backs up first) calls under one prefix.

    It streams the dump as a multipart upload (aborted on failure), writes the manifest,
    lists the prefix for the catalogue, deletes dumps beyond the retention, and sweeps
    multipart uploads an earlier crash left behind (ListMultipartUploads, AbortMultipartUpload).
    """
    objects = pulumi.Output.concat(bucket_arn, f"/{prefix}/*")
    return [
        {
            "Sid": "WriteBackups",
            "Effect": "Allow",
            "Action": [
                "s3:PutObject",
                "s3:GetObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": objects,
        },
        _list_prefix(bucket_arn, prefix, "ListBackups"),
        # ListBucketMultipartUploads supports no s3:prefix condition (a condition on a key the
        # action lacks never matches, so it would deny the sweep). The bucket holds only backups.
        {
            "Sid": "ListUnfinishedUploads",
            "Effect": "Allow",
            "Action": "s3:ListBucketMultipartUploads",
            "Resource": bucket_arn,
        },
    ]


def backup_read_statements(bucket_arn: pulumi.Input[str], prefix: str) -> list[dict[str, Any]]:
    """What `sage db verify-backup` calls: list the catalogue, read a dump and its manifest."""
    return [
        {
            "Sid": "ReadBackups",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": pulumi.Output.concat(bucket_arn, f"/{prefix}/*"),
        },
        _list_prefix(bucket_arn, prefix, "ListBackups"),
    ]
