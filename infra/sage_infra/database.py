"""RDS PostgreSQL 18 (spec 3, 11.1), with multi-AZ and read replicas from the growth phase.

Master credentials: the issue asks for an AWS-managed master password. Two AWS facts rule it
out for this stack, so the password is a stack secret kept in Secrets Manager instead:
  * RDS refuses to create read replicas of an instance whose master password it manages
    ("Creating read replicas for source instance ... where ManageMasterUserPassword is enabled
    is not supported"), and the growth and scale phases need replicas;
  * RDS rotates a managed password every 7 days, while ECS injects secrets only when a task
    starts: every running task would lose the database within one pool recycle of a rotation.
The master credentials live in `<prefix>/db-master` (the JSON shape RDS rotation functions
use) and the app's DATABASE_URL, which embeds the password, in `<prefix>/database-url`; both
reach tasks only as ECS `secrets`. Rotating is a runbook step (infra/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, service_role
from sage_infra.constants import (
    DB_ALLOCATED_STORAGE_GB,
    DB_APP_ROLE,
    DB_BACKUP_RETENTION_DAYS,
    DB_BACKUP_WINDOW,
    DB_MAINTENANCE_WINDOW,
    DB_MAX_ALLOCATED_STORAGE_GB,
    DB_NAME,
    DB_OWNER_ROLE,
    DB_READONLY_ROLE,
    DB_USERNAME,
    POSTGRES_PORT,
)
from sage_infra.secrets import stored_secret

ENGINE_VERSION = "18"
PARAMETER_GROUP_FAMILY = "postgres18"
ENHANCED_MONITORING_SECONDS = 60
ENHANCED_MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass(frozen=True)
class DatabaseArgs:
    prefix: str
    tags: Mapping[str, str]
    instance_class: str
    read_replicas: int
    multi_az: bool
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    master_password: pulumi.Input[str]
    # The passwords `sage db bootstrap-roles` gives the owner, app and read-only roles.
    role_passwords: Mapping[str, pulumi.Input[str]]
    protect: bool
    final_snapshot: bool
    apply_immediately: bool
    performance_insights: bool
    slow_query_ms: int
    secret_recovery_window_in_days: int


def final_snapshot_identifier(identifier: str, now: datetime | None = None) -> str:
    """`<identifier>-final-<UTC creation time>`: RDS refuses a final snapshot name already taken."""
    return f"{identifier}-final-{(now or datetime.now(UTC)):%Y%m%d%H%M%S}"


def database_url(address: str, password: str, user: str = DB_USERNAME) -> str:
    """A DATABASE_URL for one role; TLS is mandatory (rds.force_ssl=1)."""
    return f"postgresql://{user}:{quote(password, safe='')}@{address}:{POSTGRES_PORT}/{DB_NAME}?sslmode=require"


# Secret name (<prefix>/<name>) -> (role, key of DatabaseArgs.role_passwords or None for the master).
ROLE_URLS = {
    "database-url": (DB_APP_ROLE, "app"),
    "database-url-owner": (DB_OWNER_ROLE, "owner"),
    "database-url-readonly": (DB_READONLY_ROLE, "readonly"),
    "database-url-master": (DB_USERNAME, None),
}


class Database(pulumi.ComponentResource):
    primary: aws.rds.Instance
    replicas: list[aws.rds.Instance]
    credentials_secret: aws.secretsmanager.Secret
    database_url_secret: aws.secretsmanager.Secret  # the app role's (API, ingestor)
    url_secrets: dict[str, aws.secretsmanager.Secret]  # by ROLE_URLS name
    role_passwords_secret: aws.secretsmanager.Secret

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:Database", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)
        identifier = f"{p}-postgres"

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=f"{p}-database",
            description="Isolated database subnets (no route to the internet)",
            subnet_ids=list(args.subnet_ids),
            tags=tags,
            opts=child(self),
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-parameters",
            name=f"{p}-postgres18",
            family=PARAMETER_GROUP_FAMILY,
            description="Sage PostgreSQL 18: TLS required, slow queries logged",
            parameters=[
                {"name": "rds.force_ssl", "value": "1", "apply_method": "pending-reboot"},
                {"name": "log_min_duration_statement", "value": str(args.slow_query_ms), "apply_method": "immediate"},
                {"name": "log_lock_waits", "value": "1", "apply_method": "immediate"},
                {"name": "log_temp_files", "value": "10240", "apply_method": "immediate"},
            ],
            tags=tags,
            opts=child(self),
        )
        monitoring_role = service_role(
            f"{name}-monitoring-role",
            service="monitoring.rds.amazonaws.com",
            physical_name=f"{p}-rds-monitoring",
            description="RDS enhanced monitoring",
            tags=tags,
            parent=self,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-monitoring-policy",
            role=monitoring_role.name,
            policy_arn=ENHANCED_MONITORING_POLICY,
            opts=child(self),
        )

        common: dict[str, Any] = {
            "instance_class": args.instance_class,
            "storage_encrypted": True,
            "publicly_accessible": False,
            "vpc_security_group_ids": [args.security_group_id],
            "parameter_group_name": parameters.name,
            "max_allocated_storage": DB_MAX_ALLOCATED_STORAGE_GB,
            "performance_insights_enabled": args.performance_insights,
            "performance_insights_retention_period": 7 if args.performance_insights else None,
            "monitoring_interval": ENHANCED_MONITORING_SECONDS,
            "monitoring_role_arn": monitoring_role.arn,
            "copy_tags_to_snapshot": True,
            "auto_minor_version_upgrade": True,
            "apply_immediately": args.apply_immediately,
            "deletion_protection": args.protect,
            "ca_cert_identifier": "rds-ca-rsa2048-g1",
        }
        self.primary = aws.rds.Instance(
            f"{name}-primary",
            identifier=identifier,
            engine="postgres",
            engine_version=ENGINE_VERSION,
            db_name=DB_NAME,
            username=DB_USERNAME,
            password=args.master_password,
            allocated_storage=DB_ALLOCATED_STORAGE_GB,
            storage_type="gp3",
            db_subnet_group_name=subnet_group.name,
            multi_az=args.multi_az,
            backup_retention_period=DB_BACKUP_RETENTION_DAYS,
            backup_window=DB_BACKUP_WINDOW,
            maintenance_window=DB_MAINTENANCE_WINDOW,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            skip_final_snapshot=not args.final_snapshot,
            # Unique per instance: the name is fixed when the instance is created (ignore_changes
            # keeps it), so a replacement's deletion never collides with an earlier final snapshot.
            final_snapshot_identifier=final_snapshot_identifier(identifier) if args.final_snapshot else None,
            delete_automated_backups=not args.final_snapshot,
            tags={**tags, "Name": identifier},
            opts=child(self, protect=args.protect, ignore_changes=["finalSnapshotIdentifier"]),
            **common,
        )
        # Same-region replicas inherit engine, storage and subnet group from the primary. They
        # hold no data of their own, so a phase change back down may remove them.
        replica_settings = {**common, "deletion_protection": False}
        self.replicas = [
            aws.rds.Instance(
                f"{name}-replica-{i + 1}",
                identifier=f"{identifier}-replica-{i + 1}",
                replicate_source_db=self.primary.identifier,
                storage_type="gp3",
                # A replica's own slow queries and errors, like the primary's.
                enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
                skip_final_snapshot=True,
                tags={**tags, "Name": f"{identifier}-replica-{i + 1}", "Role": "read-replica"},
                opts=child(self),
                **replica_settings,
            )
            for i in range(args.read_replicas)
        ]

        self.credentials_secret = stored_secret(
            f"{name}-master-credentials",
            physical_name=f"{p}/db-master",
            description="PostgreSQL master credentials (RDS secret JSON shape)",
            value=pulumi.Output.json_dumps(
                {
                    "engine": "postgres",
                    "host": self.primary.address,
                    "port": POSTGRES_PORT,
                    "username": DB_USERNAME,
                    "password": args.master_password,
                    "dbname": DB_NAME,
                }
            ),
            recovery_window_in_days=args.secret_recovery_window_in_days,
            tags=tags,
            parent=self,
        )

        def url_secret(secret_name: str, user: str, password: pulumi.Input[str]) -> aws.secretsmanager.Secret:
            return stored_secret(
                f"{name}-{secret_name.removeprefix('database-')}",
                physical_name=f"{p}/{secret_name}",
                description=f"DATABASE_URL of role {user}",
                value=pulumi.Output.all(self.primary.address, password).apply(
                    lambda parts: database_url(str(parts[0]), str(parts[1]), user)
                ),
                recovery_window_in_days=args.secret_recovery_window_in_days,
                tags=tags,
                parent=self,
            )

        self.url_secrets = {
            secret_name: url_secret(
                secret_name, user, args.master_password if key is None else args.role_passwords[key]
            )
            for secret_name, (user, key) in ROLE_URLS.items()
        }
        self.database_url_secret = self.url_secrets["database-url"]
        # What `sage db bootstrap-roles` sets (SAGE_DB_{OWNER,APP,READONLY}_PASSWORD, by JSON key).
        self.role_passwords_secret = stored_secret(
            f"{name}-role-passwords",
            physical_name=f"{p}/db-role-passwords",
            description="Passwords of the owner, app and read-only database roles (sage db bootstrap-roles)",
            value=pulumi.Output.json_dumps(dict(args.role_passwords)),
            recovery_window_in_days=args.secret_recovery_window_in_days,
            tags=tags,
            parent=self,
        )
        self.identifier = identifier
        self.replica_endpoints = [r.endpoint for r in self.replicas]
        self.register_outputs({"endpoint": self.primary.endpoint})
