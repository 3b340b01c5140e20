"""Small helpers the components share: child options, IAM documents, tags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws


def child(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def policy_document(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy JSON document; statements may hold Outputs (ARNs)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(service: str, conditions: Mapping[str, Any] | None = None) -> pulumi.Output[str]:
    """Trust policy for an AWS service; conditions (which may hold Outputs) guard confused deputies."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if conditions:
        statement["Condition"] = dict(conditions)
    return policy_document([statement])


def service_role(
    name: str,
    *,
    service: str,
    physical_name: str,
    description: str,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    conditions: Mapping[str, Any] | None = None,
) -> aws.iam.Role:
    return aws.iam.Role(
        name,
        name=physical_name,
        description=description,
        assume_role_policy=assume_role_policy(service, conditions),
        tags=dict(tags),
        opts=child(parent),
    )


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Bucket-policy statement refusing plain-HTTP access."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def private_bucket(
    name: str,
    *,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    versioned: bool,
    force_destroy: bool,
    bucket_prefix: str,
) -> aws.s3.Bucket:
    """A bucket with encryption, every public-access block and owner-enforced objects."""
    bucket = aws.s3.Bucket(
        name, bucket_prefix=bucket_prefix, force_destroy=force_destroy, tags=dict(tags), opts=child(parent)
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child(parent),
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=child(parent),
    )
    # SSE-S3: the only server-side encryption ALB access logs accept, and enough for objects
    # CloudFront reads through origin access control without a KMS key policy.
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}, "bucket_key_enabled": True}],
        opts=child(parent),
    )
    if versioned:
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child(parent),
        )
    return bucket
