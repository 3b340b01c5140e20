"""The bucket `sage db backup` writes to: versioned, encrypted, private, to Glacier after 30 days."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, deny_insecure_transport, policy_document, private_bucket
from sage_infra.constants import BACKUP_GLACIER_AFTER_DAYS

BACKUP_PREFIX = "postgres"
# The app keeps 7 dumps and deletes older ones; deleted dumps stay as noncurrent versions
# (protection against a bad prune) and go to Glacier, then expire after its 90-day minimum.
NONCURRENT_EXPIRY_DAYS = BACKUP_GLACIER_AFTER_DAYS + 90


@dataclass(frozen=True)
class BackupBucketArgs:
    prefix: str
    tags: Mapping[str, str]
    protect: bool


class BackupBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:BackupBucket", name, None, opts)
        self.bucket = private_bucket(
            f"{name}-bucket",
            tags=args.tags,
            parent=self,
            versioned=True,
            force_destroy=not args.protect,
            bucket_prefix=f"{args.prefix}-backups-",
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                {
                    "id": "glacier-after-30-days",
                    "status": "Enabled",
                    "filter": {},
                    "transitions": [{"days": BACKUP_GLACIER_AFTER_DAYS, "storage_class": "GLACIER"}],
                    "noncurrent_version_transitions": [
                        {"noncurrent_days": BACKUP_GLACIER_AFTER_DAYS, "storage_class": "GLACIER"}
                    ],
                    "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_EXPIRY_DAYS},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            opts=child(self),
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=policy_document([deny_insecure_transport(self.bucket.arn)]),
            opts=child(self),
        )
        self.url = pulumi.Output.concat("s3://", self.bucket.bucket, f"/{BACKUP_PREFIX}")
        self.register_outputs({"bucket": self.bucket.bucket})
