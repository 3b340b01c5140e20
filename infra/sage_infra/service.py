"""ECR, the ECS cluster and the Sage workloads (spec 2): API, ingestor, migration, backup,
backup verification.

One image, five commands. The API runs behind the ALB with autoscaling owning its desired
count; the ingestor runs alone (stop-then-start, never two); migrations are a task definition
operators run once per release (it backs up first, so it writes to the backup bucket too);
backups and their weekly verification are task definitions EventBridge runs on schedules
(sage_infra/scheduled.py).

Ownership is shared with the deploy workflow (.github/workflows/deploy-backend.yml): this
program owns each task definition's shape (command, sizes, settings, secrets, roles) and
registers a revision whenever that shape changes, with the image `imageTag` names; every
deploy registers a newer revision of each family, copied from the latest one with only the
image and SAGE_RELEASE changed, and points the services at it. So the services ignore
`task_definition` changes here (a `pulumi up` must not roll them back to `imageTag`), and the
scheduled tasks run their family's latest revision, not a pinned one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.alarms import ALERT_RULES_OFF
from sage_infra.backups import BACKUP_PREFIX
from sage_infra.common import child
from sage_infra.constants import APP_PORT
from sage_infra.containers import SCRATCH_VOLUME, ContainerSpec, base_environment, container_definitions
from sage_infra.iam import backup_bucket_statements, backup_read_statements, execution_role, task_role
from sage_infra.secrets import AppSecrets
from sage_infra.sizing import INGESTOR_SIZE, OPS_SIZE, PhaseSizing

PLATFORM_VERSION = "1.4.0"
API_CONTAINER = "backend"
CPU_TARGET_PERCENT = 70.0
SCALE_IN_COOLDOWN_SECONDS = 300
SCALE_OUT_COOLDOWN_SECONDS = 60
HEALTH_CHECK_GRACE_SECONDS = 60
# The app drains in-flight requests for 30 s after SIGTERM; ECS waits a little longer.
API_STOP_TIMEOUT_SECONDS = 45
ECR_KEEP_IMAGES = 50
ECR_UNTAGGED_DAYS = 7
# Tags are immutable except `latest`, which the deploy workflow moves to each release (nothing
# deploys `latest`: task definitions name the commit's tag, see config.py).
ECR_MUTABLE_TAG = "latest"
# What the deploy workflow changes on a service; this program must leave it alone.
DEPLOY_OWNED_SERVICE_FIELDS = ("task_definition",)
# A deployment whose tasks never turn healthy stops and rolls back to the last good revision.
CIRCUIT_BREAKER: aws.ecs.ServiceDeploymentCircuitBreakerArgsDict = {"enable": True, "rollback": True}
# The one-off commands (after the `sage` entry point). verify-backup restores with one
# pg_restore job so it stays within its slot of the connection budget (sage_infra/budget.py).
MIGRATE_COMMAND = ("db", "migrate")
BACKUP_COMMAND = ("db", "backup")
VERIFY_BACKUP_COMMAND = ("db", "verify-backup", "latest", "--jobs", "1")
BOOTSTRAP_ROLES_COMMAND = ("db", "bootstrap-roles")
OPS_IMAGE_SUFFIX = "-ops"
ROLE_PASSWORD_KEYS = ("owner", "app", "readonly")


@dataclass(frozen=True)
class ServicesArgs:
    prefix: str
    tags: Mapping[str, str]
    region: str
    account_id: pulumi.Input[str]
    image_tag: str
    sizing: PhaseSizing
    workers: int
    db_pool_size: int
    db_max_overflow: int
    trusted_proxy_hops: int
    app_domain: str
    notification_environment: Mapping[str, str]  # SAGE_SMTP_HOST/PORT/FROM, SAGE_VAPID_*, SAGE_PUBLIC_URL (plain)
    log_retention_days: int
    protect: bool
    private_subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    https_listener: pulumi.Resource
    secrets: AppSecrets
    database_url_secret_arn: pulumi.Input[str]  # the app role's: API and ingestor
    valkey_url_secret_arn: pulumi.Input[str]
    backup_bucket_arn: pulumi.Input[str]
    backup_url: pulumi.Input[str]
    owner_database_url_secret_arn: pulumi.Input[str]  # migrate, verify-backup
    readonly_database_url_secret_arn: pulumi.Input[str]  # backup
    master_database_url_secret_arn: pulumi.Input[str]  # bootstrap-roles only
    role_passwords_secret_arn: pulumi.Input[str]  # bootstrap-roles only (JSON: owner, app, readonly)
    cpu_architecture: str = "X86_64"  # lean: ARM64 (Graviton, ~20 % cheaper; the image is multi-arch)
    container_insights: bool = True


def ecr_lifecycle_policy() -> str:
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"drop untagged layers after {ECR_UNTAGGED_DAYS} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": ECR_UNTAGGED_DAYS,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"keep the last {ECR_KEEP_IMAGES} images (rollback targets)",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": ECR_KEEP_IMAGES,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )


class Services(pulumi.ComponentResource):
    repository: aws.ecr.Repository
    cluster: aws.ecs.Cluster
    api_service: aws.ecs.Service
    ingestor_service: aws.ecs.Service
    api_task_definition: aws.ecs.TaskDefinition
    ingestor_task_definition: aws.ecs.TaskDefinition
    migrate_task_definition: aws.ecs.TaskDefinition
    migrate_task_role: aws.iam.Role
    backup_task_definition: aws.ecs.TaskDefinition
    backup_task_role: aws.iam.Role
    verify_backup_task_definition: aws.ecs.TaskDefinition
    verify_backup_task_role: aws.iam.Role
    # One execution role for the one-off tasks: they read the same secrets and log group.
    ops_execution_role: aws.iam.Role
    scaling_target: aws.appautoscaling.Target

    def __init__(self, name: str, args: ServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:Services", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)
        s = args.secrets

        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            name=f"{p}-backend",
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[{"filter": ECR_MUTABLE_TAG, "filter_type": "WILDCARD"}],
            encryption_configurations=[{"encryption_type": "AES256"}],
            force_delete=not args.protect,
            tags=tags,
            opts=child(self),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repository-lifecycle",
            repository=self.repository.name,
            policy=ecr_lifecycle_policy(),
            opts=child(self),
        )
        image = pulumi.Output.concat(self.repository.repository_url, ":", args.image_tag)
        # The Dockerfile's `ops` target (runtime plus PostgreSQL's client tools), pushed by the
        # deploy as <sha>-ops: only the one-off database tasks carry pg_dump and psql.
        ops_image = pulumi.Output.concat(self.repository.repository_url, ":", args.image_tag, OPS_IMAGE_SUFFIX)

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=f"{p}-cluster",
            # Lean: off. The alarms read ECS's free service metrics; Container Insights bills ~30 metrics.
            settings=[{"name": "containerInsights", "value": "enabled" if args.container_insights else "disabled"}],
            tags=tags,
            opts=child(self),
        )

        def log_group(key: str) -> aws.cloudwatch.LogGroup:
            return aws.cloudwatch.LogGroup(
                f"{name}-{key}-logs",
                name=f"/ecs/{p}-{key}",
                retention_in_days=args.log_retention_days,
                tags=tags,
                opts=child(self),
            )

        api_logs, ingestor_logs, ops_logs = log_group("backend"), log_group("ingestor"), log_group("ops")

        # Secrets each workload's container receives. The app's production check demands
        # DATABASE_URL, VALKEY_URL and SAGE_JWT_SECRET of every command, so all four get them.
        core: dict[str, pulumi.Input[str]] = {
            "DATABASE_URL": args.database_url_secret_arn,
            "VALKEY_URL": args.valkey_url_secret_arn,
            "SAGE_JWT_SECRET": s.jwt_secret.arn,
            "SAGE_DISCORD_WEBHOOK_ERRORS": s.discord_webhook_errors.arn,
        }
        if s.sentry_dsn is not None:
            core["SENTRY_DSN"] = s.sentry_dsn.arn
        api_secrets: dict[str, pulumi.Input[str]] = {
            **core,
            "ANTHROPIC_API_KEY": s.anthropic_api_key.arn,
            "SAGE_DISCORD_WEBHOOK_PERFORMANCE": s.discord_webhook_performance.arn,
            "SAGE_DISCORD_WEBHOOK_BUSINESS": s.discord_webhook_business.arn,
            # Alerts that reach the user: only the API sends emails and pushes.
            "SAGE_SMTP_USERNAME": s.smtp_username.arn,
            "SAGE_SMTP_PASSWORD": s.smtp_password.arn,
        }
        if s.vapid_private_key is not None:
            api_secrets["SAGE_VAPID_PRIVATE_KEY"] = s.vapid_private_key.arn

        def exec_role(
            key: str,
            logs: aws.cloudwatch.LogGroup,
            secrets: Mapping[str, pulumi.Input[str]],
            secret_arns: Sequence[pulumi.Input[str]] | None = None,
        ) -> aws.iam.Role:
            return execution_role(
                f"{name}-{key}-execution",
                physical_name=f"{p}-{key}-execution",
                repository_arn=self.repository.arn,
                log_group_arn=logs.arn,
                secret_arns=list(secrets.values()) if secret_arns is None else list(secret_arns),
                account_id=args.account_id,
                region=args.region,
                tags=tags,
                parent=self,
            )

        def workload_role(key: str, description: str, statements: list[dict[str, object]]) -> aws.iam.Role:
            return task_role(
                f"{name}-{key}-task",
                physical_name=f"{p}-{key}-task",
                description=description,
                statements=statements,
                account_id=args.account_id,
                region=args.region,
                tags=tags,
                parent=self,
            )

        def task_definition(
            key: str,
            spec: ContainerSpec,
            cpu: int,
            memory: int,
            execution: aws.iam.Role,
            task: aws.iam.Role,
        ) -> aws.ecs.TaskDefinition:
            return aws.ecs.TaskDefinition(
                f"{name}-{key}-taskdef",
                family=f"{p}-{key}",
                network_mode="awsvpc",
                requires_compatibilities=["FARGATE"],
                cpu=str(cpu),
                memory=str(memory),
                runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": args.cpu_architecture},
                execution_role_arn=execution.arn,
                task_role_arn=task.arn,
                volumes=[{"name": SCRATCH_VOLUME}],
                container_definitions=container_definitions(spec),
                tags=tags,
                opts=child(self),
            )

        # --- API ------------------------------------------------------------------------------
        api_env: dict[str, pulumi.Input[str]] = base_environment(
            image_tag=args.image_tag,
            pool_size=args.db_pool_size,
            max_overflow=args.db_max_overflow,
            workers=args.workers,
            region=args.region,
        ) | {
            "SAGE_HOST": "0.0.0.0",
            "SAGE_PORT": str(APP_PORT),
            "SAGE_TRUSTED_PROXY_HOPS": str(args.trusted_proxy_hops),
            "SAGE_MARKET_SOURCE": "live",
            "SAGE_INGEST_IN_PROCESS": "false",
            "SAGE_LLM_PROVIDER": "anthropic",
            "SAGE_CORS_ORIGINS": f"https://{args.app_domain}",
            "SAGE_ALERT_RULES_OFF": ALERT_RULES_OFF,
            **args.notification_environment,
        }
        self.api_task_definition = task_definition(
            "backend",
            ContainerSpec(
                name=API_CONTAINER,
                image=image,
                command=("serve",),
                environment=api_env,
                secrets=api_secrets,
                log_group=api_logs.name,
                log_stream_prefix="backend",
                region=args.region,
                port=APP_PORT,
                health_check=True,
                stop_timeout=API_STOP_TIMEOUT_SECONDS,
                # Every open SSE stream holds a socket.
                ulimits=({"name": "nofile", "softLimit": 65536, "hardLimit": 65536},),
            ),
            args.sizing.api_cpu,
            args.sizing.api_memory,
            exec_role("backend", api_logs, api_secrets),
            workload_role("backend", "Sage API: calls no AWS API", []),
        )

        network: aws.ecs.ServiceNetworkConfigurationArgsDict = {
            "subnets": list(args.private_subnet_ids),
            "security_groups": [args.security_group_id],
            "assign_public_ip": False,
        }
        api_target: aws.ecs.ServiceLoadBalancerArgsDict = {
            "target_group_arn": args.target_group_arn,
            "container_name": API_CONTAINER,
            "container_port": APP_PORT,
        }
        self.api_service = aws.ecs.Service(
            f"{name}-api",
            name=f"{p}-backend",
            cluster=self.cluster.arn,
            task_definition=self.api_task_definition.arn,
            desired_count=args.sizing.api_min_tasks,
            launch_type="FARGATE",
            platform_version=PLATFORM_VERSION,
            network_configuration=network,
            load_balancers=[api_target],
            deployment_circuit_breaker=CIRCUIT_BREAKER,
            deployment_maximum_percent=args.sizing.deployment_maximum_percent,
            deployment_minimum_healthy_percent=args.sizing.deployment_minimum_healthy_percent,
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            wait_for_steady_state=False,
            tags=tags,
            # Autoscaling owns the running count once the service exists; deploys own the revision.
            opts=child(
                self,
                depends_on=[args.https_listener],
                ignore_changes=["desired_count", *DEPLOY_OWNED_SERVICE_FIELDS],
            ),
        )
        self.scaling_target = aws.appautoscaling.Target(
            f"{name}-api-scaling",
            min_capacity=args.sizing.api_min_tasks,
            max_capacity=args.sizing.api_max_tasks,
            resource_id=pulumi.Output.concat("service/", self.cluster.name, "/", self.api_service.name),
            scalable_dimension="ecs:service:DesiredCount",
            service_namespace="ecs",
            tags=tags,
            opts=child(self),
        )
        aws.appautoscaling.Policy(
            f"{name}-api-cpu",
            name=f"{p}-backend-cpu-{int(CPU_TARGET_PERCENT)}",
            policy_type="TargetTrackingScaling",
            resource_id=self.scaling_target.resource_id,
            scalable_dimension=self.scaling_target.scalable_dimension,
            service_namespace=self.scaling_target.service_namespace,
            target_tracking_scaling_policy_configuration={
                "target_value": CPU_TARGET_PERCENT,
                "predefined_metric_specification": {"predefined_metric_type": "ECSServiceAverageCPUUtilization"},
                "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
                "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
            },
            opts=child(self),
        )

        # --- ingestor -------------------------------------------------------------------------
        def small_env(size_pool: int, size_overflow: int) -> dict[str, pulumi.Input[str]]:
            return base_environment(
                image_tag=args.image_tag, pool_size=size_pool, max_overflow=size_overflow, workers=1, region=args.region
            )

        self.ingestor_task_definition = task_definition(
            "ingestor",
            ContainerSpec(
                name="ingestor",
                image=image,
                command=("ingest",),
                environment=small_env(INGESTOR_SIZE.db_pool_size, INGESTOR_SIZE.db_max_overflow)
                | {"SAGE_MARKET_SOURCE": "live", "SAGE_ALERT_RULES_OFF": ALERT_RULES_OFF},
                secrets=core,
                log_group=ingestor_logs.name,
                log_stream_prefix="ingestor",
                region=args.region,
            ),
            INGESTOR_SIZE.cpu,
            INGESTOR_SIZE.memory,
            exec_role("ingestor", ingestor_logs, core),
            workload_role("ingestor", "Sage market-data ingestor: calls no AWS API", []),
        )
        self.ingestor_service = aws.ecs.Service(
            f"{name}-ingestor",
            name=f"{p}-ingestor",
            cluster=self.cluster.arn,
            task_definition=self.ingestor_task_definition.arn,
            desired_count=1,
            launch_type="FARGATE",
            platform_version=PLATFORM_VERSION,
            network_configuration=network,
            deployment_circuit_breaker=CIRCUIT_BREAKER,
            # Never two ingestors: they would double-write candles and the connection budget.
            deployment_maximum_percent=100,
            deployment_minimum_healthy_percent=0,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            wait_for_steady_state=False,
            tags=tags,
            opts=child(self, ignore_changes=[*DEPLOY_OWNED_SERVICE_FIELDS]),
        )

        # --- one-off tasks: migrations, backups, backup verification ---------------------------
        # All three need SAGE_BACKUP_URL: `sage db migrate` takes a backup before migrating (and
        # restores it if a revision fails); without the URL it would land on the task's disk.
        # Each connects as its own database role (sage db bootstrap-roles): migrate and
        # verify-backup as the owner, backup read-only; the master only bootstraps the roles.
        owner_secrets = {**core, "DATABASE_URL": args.owner_database_url_secret_arn}
        readonly_secrets = {**core, "DATABASE_URL": args.readonly_database_url_secret_arn}
        ops_execution = exec_role("ops", ops_logs, owner_secrets)
        self.ops_execution_role = ops_execution
        backup_execution = exec_role("backup", ops_logs, readonly_secrets)
        self.backup_execution_role = backup_execution
        ops_env = small_env(OPS_SIZE.db_pool_size, OPS_SIZE.db_max_overflow) | {"SAGE_BACKUP_URL": args.backup_url}

        def ops_task(
            key: str,
            command: tuple[str, ...],
            role: aws.iam.Role,
            secrets: Mapping[str, pulumi.Input[str]] = owner_secrets,
            execution: aws.iam.Role = ops_execution,
            environment: Mapping[str, pulumi.Input[str]] = ops_env,
        ) -> aws.ecs.TaskDefinition:
            return task_definition(
                key,
                ContainerSpec(
                    name=key,
                    image=ops_image,
                    command=command,
                    environment=environment,
                    secrets=secrets,
                    log_group=ops_logs.name,
                    log_stream_prefix=key,
                    region=args.region,
                ),
                OPS_SIZE.cpu,
                OPS_SIZE.memory,
                execution,
                role,
            )

        self.migrate_task_role = workload_role(
            "migrate",
            "Sage migrations: back up to the backup bucket first (and restore from it on failure)",
            backup_bucket_statements(args.backup_bucket_arn, BACKUP_PREFIX),
        )
        self.migrate_task_definition = ops_task("migrate", MIGRATE_COMMAND, self.migrate_task_role)
        self.backup_task_role = workload_role(
            "backup",
            "Sage backups: write dumps to the backup bucket only",
            backup_bucket_statements(args.backup_bucket_arn, BACKUP_PREFIX),
        )
        self.backup_task_definition = ops_task(
            "backup", BACKUP_COMMAND, self.backup_task_role, readonly_secrets, backup_execution
        )
        self.verify_backup_task_role = workload_role(
            "verify-backup",
            "Sage backup verification: read dumps from the backup bucket",
            backup_read_statements(args.backup_bucket_arn, BACKUP_PREFIX),
        )
        self.verify_backup_task_definition = ops_task(
            "verify-backup", VERIFY_BACKUP_COMMAND, self.verify_backup_task_role
        )
        # The one task that logs in as the RDS master: creates the three roles (run it before
        # the first migration and to rotate their passwords). ECS reads each password by JSON key.
        bootstrap_secrets: dict[str, pulumi.Input[str]] = {
            **core,
            "DATABASE_URL": args.master_database_url_secret_arn,
            **{
                f"SAGE_DB_{key.upper()}_PASSWORD": pulumi.Output.concat(args.role_passwords_secret_arn, f":{key}::")
                for key in ROLE_PASSWORD_KEYS
            },
        }
        bootstrap_execution = exec_role(
            "bootstrap-roles",
            ops_logs,
            bootstrap_secrets,
            [*core.values(), args.master_database_url_secret_arn, args.role_passwords_secret_arn],
        )
        self.bootstrap_roles_task_definition = ops_task(
            "bootstrap-roles",
            BOOTSTRAP_ROLES_COMMAND,
            workload_role("bootstrap-roles", "Sage database roles bootstrap: calls no AWS API", []),
            bootstrap_secrets,
            bootstrap_execution,
            small_env(OPS_SIZE.db_pool_size, OPS_SIZE.db_max_overflow),
        )
        self.register_outputs({"cluster": self.cluster.name, "repository_url": self.repository.repository_url})

    def run_task_command(self, task_definition: aws.ecs.TaskDefinition, args: ServicesArgs) -> pulumi.Output[str]:
        """The `aws ecs run-task` line operators paste to run a one-off task (migration, backup, verification)."""
        return pulumi.Output.all(
            self.cluster.name,
            task_definition.family,
            pulumi.Output.all(*args.private_subnet_ids),
            args.security_group_id,
        ).apply(
            lambda v: (
                f"aws ecs run-task --region {args.region} --cluster {v[0]} --task-definition {v[1]} "
                f"--launch-type FARGATE --platform-version {PLATFORM_VERSION} --network-configuration "
                f"'awsvpcConfiguration={{subnets=[{','.join(v[2])}],securityGroups=[{v[3]}],assignPublicIp=DISABLED}}'"
            )
        )
