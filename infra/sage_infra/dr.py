"""Recovery beyond one region: copies of the backups in a second region (`drRegion`).

* Every object `sage db backup` writes to the backup bucket is replicated (S3 Replication) to a
  versioned, private bucket in the DR region, encrypted there with a customer-managed KMS key of
  that region. Deletions are not replicated (a prune, a mistake or an attacker in the primary
  region cannot empty the copy); the copy keeps its own lifecycle (Glacier after 30 days,
  noncurrent versions expire after 120).
* From `growth` on, RDS also replicates its automated backups (snapshots and transaction logs,
  for point-in-time restore) to the DR region with the same retention, encrypted with that key.
  In `mvp` the S3 copy (the daily dump) is the regional-loss path: RPO about a day.

docs/runbooks/disaster-recovery.md (procedure D) restores from either after a regional loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.backups import NONCURRENT_EXPIRY_DAYS
from sage_infra.common import child, deny_insecure_transport, policy_document, private_bucket, service_role
from sage_infra.constants import BACKUP_GLACIER_AFTER_DAYS, DB_BACKUP_RETENTION_DAYS


@dataclass(frozen=True)
class DisasterRecoveryArgs:
    prefix: str
    tags: Mapping[str, str]
    dr_region: str
    account_id: pulumi.Input[str]
    protect: bool
    source_bucket: aws.s3.Bucket
    source_component: pulumi.Resource  # the backup bucket's component: its versioning must exist first
    database_arn: pulumi.Input[str]
    replicate_database_backups: bool


class DisasterRecovery(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    key: aws.kms.Key

    def __init__(self, name: str, args: DisasterRecoveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:DisasterRecovery", name, None, opts)
        tags = dict(args.tags)
        provider = aws.Provider(f"{name}-provider", region=args.dr_region, opts=child(self))
        there = pulumi.ResourceOptions(parent=self, provider=provider)
        site = _Site(f"{name}-site", pulumi.ResourceOptions(parent=self, providers=[provider]))

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.prefix}: backups copied to {args.dr_region}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=there,
        )
        self.bucket = private_bucket(
            f"{name}-bucket",
            tags=tags,
            parent=site,
            versioned=True,
            force_destroy=not args.protect,
            bucket_prefix=f"{args.prefix}-backups-dr-",
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
                }
            ],
            opts=there,
        )
        aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=self.bucket.id,
            policy=policy_document([deny_insecure_transport(self.bucket.arn)]),
            opts=there,
        )

        role = service_role(
            f"{name}-replication-role",
            service="s3.amazonaws.com",
            physical_name=f"{args.prefix}-backup-replication",
            description="S3 replication of the backup bucket to the DR region",
            tags=tags,
            parent=self,
            conditions={"StringEquals": {"aws:SourceAccount": args.account_id}},
        )
        source = args.source_bucket
        aws.iam.RolePolicy(
            f"{name}-replication-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "ReadSourceConfiguration",
                        "Effect": "Allow",
                        "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                        "Resource": source.arn,
                    },
                    {
                        "Sid": "ReadSourceVersions",
                        "Effect": "Allow",
                        "Action": [
                            "s3:GetObjectVersionForReplication",
                            "s3:GetObjectVersionAcl",
                            "s3:GetObjectVersionTagging",
                        ],
                        "Resource": pulumi.Output.concat(source.arn, "/*"),
                    },
                    {
                        "Sid": "WriteReplicas",
                        "Effect": "Allow",
                        "Action": ["s3:ReplicateObject", "s3:ReplicateTags"],
                        "Resource": pulumi.Output.concat(self.bucket.arn, "/*"),
                    },
                    {
                        "Sid": "EncryptReplicas",
                        "Effect": "Allow",
                        "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                        "Resource": self.key.arn,
                        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{args.dr_region}.amazonaws.com"}},
                    },
                ]
            ),
            opts=child(self),
        )
        aws.s3.BucketReplicationConfig(
            f"{name}-replication",
            bucket=source.id,
            role=role.arn,
            rules=[
                {
                    "id": "copy-backups-to-dr-region",
                    "status": "Enabled",
                    "filter": {},
                    "delete_marker_replication": {"status": "Disabled"},
                    "destination": {
                        "bucket": self.bucket.arn,
                        "storage_class": "STANDARD_IA",
                        "encryption_configuration": {"replica_kms_key_id": self.key.arn},
                    },
                }
            ],
            # Both buckets must be versioned before S3 accepts a replication configuration.
            opts=child(self, depends_on=[args.source_component, site]),
        )
        if args.replicate_database_backups:
            aws.rds.InstanceAutomatedBackupsReplication(
                f"{name}-rds-backups",
                source_db_instance_arn=args.database_arn,
                kms_key_id=self.key.arn,
                retention_period=DB_BACKUP_RETENTION_DAYS,
                opts=there,
            )
        self.register_outputs({"bucket": self.bucket.bucket})


class _Site(pulumi.ComponentResource):
    """Parent of the resources built by shared helpers (private_bucket), so they inherit the DR provider."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions) -> None:
        super().__init__("sage:infra:DisasterRecoverySite", name, None, opts)
        self.register_outputs({})
