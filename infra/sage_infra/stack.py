"""The whole stack: one component per concern, wired together. `__main__.py` calls `build`."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from sage_infra import budget
from sage_infra.alarms import Channel
from sage_infra.backups import BackupBucket, BackupBucketArgs
from sage_infra.cache import Cache, CacheArgs
from sage_infra.config import NatMode, SecretValues, StackConfig
from sage_infra.database import Database, DatabaseArgs
from sage_infra.dns import Dns, DnsArgs
from sage_infra.dr import DisasterRecovery, DisasterRecoveryArgs
from sage_infra.frontend import Frontend, FrontendArgs
from sage_infra.github_oidc import GitHubAccess, GitHubAccessArgs
from sage_infra.loadbalancer import LoadBalancer, LoadBalancerArgs
from sage_infra.monitoring import Monitoring, MonitoringArgs
from sage_infra.network import Network, NetworkArgs
from sage_infra.scheduled import ScheduledTask, ScheduledTaskArgs, TaskFailureWatch, TaskFailureWatchArgs
from sage_infra.secrets import AppSecrets, AppSecretsArgs
from sage_infra.security import SecurityGroups, SecurityGroupsArgs
from sage_infra.service import PLATFORM_VERSION, Services, ServicesArgs
from sage_infra.sizing import Phase
from sage_infra.waf import EdgeFirewall, EdgeFirewallArgs


class BudgetExceededError(pulumi.RunError):
    """Raised before any resource is registered; Pulumi prints the message without a traceback."""


def check_budget(cfg: StackConfig) -> budget.BudgetReport:
    try:
        return budget.check(cfg.sizing.db_instance_class, cfg.workloads())
    except budget.ConnectionBudgetError as exc:
        raise BudgetExceededError(str(exc)) from None


def build(cfg: StackConfig, secrets: SecretValues) -> dict[str, pulumi.Input[object]]:
    """Declare every resource; returns the stack outputs."""
    report = check_budget(cfg)
    pulumi.log.info(report.message())

    tags = cfg.tags()
    p = cfg.prefix
    recovery_days = 7 if cfg.protect else 0
    secret = pulumi.Output.secret
    account_id = aws.get_caller_identity_output().account_id

    network = Network(
        "network",
        NetworkArgs(
            prefix=p,
            tags=tags,
            nat_gateway_count=cfg.nat_gateway_count,
            nat_instance=cfg.nat_mode is NatMode.INSTANCE,
            flow_log_traffic=cfg.flow_log_traffic,
            flow_log_retention_days=cfg.log_retention_days,
            region=cfg.region,
        ),
    )
    groups = SecurityGroups("security", SecurityGroupsArgs(prefix=p, vpc_id=network.vpc.id, tags=tags))
    app_secrets = AppSecrets(
        "secrets",
        AppSecretsArgs(
            prefix=p,
            tags=tags,
            recovery_window_in_days=recovery_days,
            anthropic_api_key=secret(secrets.anthropic_api_key),
            jwt_secret=secret(secrets.jwt_secret),
            discord_webhook_errors=secret(secrets.discord_webhook_errors),
            discord_webhook_performance=secret(secrets.discord_webhook_performance),
            discord_webhook_business=secret(secrets.discord_webhook_business),
            smtp_username=secret(secrets.smtp_username),
            smtp_password=secret(secrets.smtp_password),
            vapid_private_key=secret(secrets.vapid_private_key) if secrets.vapid_private_key else None,
            sentry_dsn=secret(secrets.sentry_dsn) if secrets.sentry_dsn else None,
        ),
    )
    backups = BackupBucket("backups", BackupBucketArgs(prefix=p, tags=tags, protect=cfg.protect))
    database = Database(
        "database",
        DatabaseArgs(
            prefix=p,
            tags=tags,
            instance_class=cfg.sizing.db_instance_class,
            read_replicas=cfg.sizing.db_read_replicas,
            multi_az=cfg.sizing.db_multi_az,
            subnet_ids=network.database_subnet_ids,
            security_group_id=groups.database.id,
            master_password=secret(secrets.db_master_password),
            role_passwords={
                "owner": secret(secrets.db_owner_password),
                "app": secret(secrets.db_app_password),
                "readonly": secret(secrets.db_readonly_password),
            },
            protect=cfg.protect,
            final_snapshot=cfg.final_snapshot,
            apply_immediately=cfg.apply_immediately,
            performance_insights=cfg.performance_insights,
            slow_query_ms=cfg.slow_query_ms,
            secret_recovery_window_in_days=recovery_days,
        ),
    )
    DisasterRecovery(
        "dr",
        DisasterRecoveryArgs(
            prefix=p,
            tags=tags,
            dr_region=cfg.dr_region,
            account_id=account_id,
            protect=cfg.protect,
            source_bucket=backups.bucket,
            source_component=backups,
            database_arn=database.primary.arn,
            replicate_database_backups=cfg.phase is not Phase.MVP,
        ),
    )
    cache = Cache(
        "cache",
        CacheArgs(
            prefix=p,
            tags=tags,
            node_type=cfg.sizing.cache_node_type,
            nodes=cfg.cache_nodes,
            subnet_ids=network.database_subnet_ids,
            security_group_id=groups.cache.id,
            auth_token=secret(secrets.valkey_auth_token),
            apply_immediately=cfg.apply_immediately,
            secret_recovery_window_in_days=recovery_days,
        ),
    )
    lb = LoadBalancer(
        "loadbalancer",
        LoadBalancerArgs(
            prefix=p,
            tags=tags,
            vpc_id=network.vpc.id,
            public_subnet_ids=network.public_subnet_ids,
            security_group_id=groups.alb.id,
            certificate_arn=cfg.alb_certificate_arn,
            protect=cfg.protect,
            origin_verify_secret=secret(secrets.origin_verify_secret),
        ),
    )
    services_args = ServicesArgs(
        prefix=p,
        tags=tags,
        region=cfg.region,
        account_id=account_id,
        image_tag=cfg.image_tag,
        sizing=cfg.sizing,
        workers=cfg.workers,
        db_pool_size=cfg.db_pool_size,
        db_max_overflow=cfg.db_max_overflow,
        trusted_proxy_hops=cfg.trusted_proxy_hops,
        app_domain=cfg.app_domain,
        notification_environment=cfg.notification_environment(),
        log_retention_days=cfg.log_retention_days,
        protect=cfg.protect,
        private_subnet_ids=network.private_subnet_ids,
        security_group_id=groups.backend.id,
        target_group_arn=lb.target_group.arn,
        https_listener=lb.https_listener,
        secrets=app_secrets,
        database_url_secret_arn=database.database_url_secret.arn,
        owner_database_url_secret_arn=database.url_secrets["database-url-owner"].arn,
        readonly_database_url_secret_arn=database.url_secrets["database-url-readonly"].arn,
        master_database_url_secret_arn=database.url_secrets["database-url-master"].arn,
        role_passwords_secret_arn=database.role_passwords_secret.arn,
        cpu_architecture=cfg.cpu_architecture,
        container_insights=cfg.container_insights,
        valkey_url_secret_arn=cache.url_secret.arn,
        backup_bucket_arn=backups.bucket.arn,
        backup_url=backups.url,
    )
    services = Services("services", services_args)

    def schedule(
        key: str,
        description: str,
        expression: str,
        task: aws.ecs.TaskDefinition,
        role: aws.iam.Role,
        execution: aws.iam.Role,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        ScheduledTask(
            f"{key}-schedule",
            ScheduledTaskArgs(
                prefix=p,
                tags=tags,
                region=cfg.region,
                account_id=account_id,
                key=key,
                description=description,
                schedule_expression=expression,
                cluster=services.cluster,
                task_definition=task,
                execution_role=execution,
                task_role=role,
                subnet_ids=network.private_subnet_ids,
                security_group_id=groups.backend.id,
                platform_version=PLATFORM_VERSION,
            ),
            opts,
        )

    schedule(
        "backup",
        "Daily logical backup of PostgreSQL to S3 (sage db backup)",
        cfg.backup_schedule,
        services.backup_task_definition,
        services.backup_task_role,
        services.backup_execution_role,
        # This component was `ScheduledBackup` before the verification got a schedule too.
        pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="sage:infra:ScheduledBackup")]),
    )
    schedule(
        "verify-backup",
        "Weekly restore test of the latest backup into a scratch database (sage db verify-backup)",
        cfg.verify_backup_schedule,
        services.verify_backup_task_definition,
        services.verify_backup_task_role,
        services.ops_execution_role,
    )
    task_failures = TaskFailureWatch(
        "db-task-failures",
        TaskFailureWatchArgs(
            prefix=p,
            tags=tags,
            region=cfg.region,
            account_id=account_id,
            cluster=services.cluster,
            task_definitions=[services.backup_task_definition, services.verify_backup_task_definition],
            log_retention_days=cfg.log_retention_days,
        ),
    )
    firewall = EdgeFirewall("waf", EdgeFirewallArgs(prefix=p, tags=tags, log_retention_days=cfg.log_retention_days))
    frontend = Frontend(
        "frontend",
        FrontendArgs(
            prefix=p,
            tags=tags,
            app_domain=cfg.app_domain,
            api_domain=cfg.api_domain,
            certificate_arn=cfg.cdn_certificate_arn,
            price_class=cfg.cloudfront_price_class,
            protect=cfg.protect,
            web_acl_arn=firewall.web_acl.arn,
            origin_verify_secret=secret(secrets.origin_verify_secret),
            www_domain=cfg.www_domain,
        ),
    )
    if cfg.hosted_zone_id:
        Dns(
            "dns",
            DnsArgs(
                hosted_zone_id=cfg.hosted_zone_id,
                app_domain=cfg.app_domain,
                api_domain=cfg.api_domain,
                distribution=frontend.distribution,
                alb=lb.alb,
                www_domain=cfg.www_domain,
            ),
        )
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            prefix=p,
            topic_name=cfg.alerts_topic_name,
            tags=tags,
            account_id=account_id,
            metrics_environment=cfg.metrics_environment,
            log_retention_days=cfg.log_retention_days,
            cluster_name=services.cluster.name,
            api_service_name=services.api_service.name,
            ingestor_service_name=services.ingestor_service.name,
            db_instance_identifiers=[database.primary.identifier, *[r.identifier for r in database.replicas]],
            cache_node_ids=cache.member_cluster_ids,
            load_balancer_arn_suffix=lb.alb.arn_suffix,
            target_group_arn_suffix=lb.target_group.arn_suffix,
            webhook_secret_arns={
                Channel.ERRORS: app_secrets.discord_webhook_errors.arn,
                Channel.PERFORMANCE: app_secrets.discord_webhook_performance.arn,
                Channel.BUSINESS: app_secrets.discord_webhook_business.arn,
            },
            alarm_router_path=cfg.alarm_router_path,
            task_failure_rule_name=task_failures.rule.name,
            alarm_emails=cfg.alarm_emails,
        ),
    )

    github_roles: dict[str, pulumi.Output[str]] = {}
    if cfg.github_repository:
        github = GitHubAccess(
            "github",
            GitHubAccessArgs(
                prefix=p,
                stack=cfg.stack,
                environment=cfg.environment,
                tags=tags,
                region=cfg.region,
                account_id=account_id,
                repository=cfg.github_repository,
                provider_arn=cfg.github_oidc_provider_arn,
                pulumi_secrets_key_arn=cfg.pulumi_secrets_key_arn,
                cluster_arn=services.cluster.arn,
                cluster_name=services.cluster.name,
                service_names=[services.api_service.name, services.ingestor_service.name],
                task_families=[
                    f"{p}-{key}"
                    for key in ("backend", "ingestor", "migrate", "backup", "verify-backup", "bootstrap-roles")
                ],
                ecr_repository_arn=services.repository.arn,
                frontend_bucket_arn=frontend.bucket.arn,
                distribution_arn=frontend.distribution.arn,
            ),
        )
        github_roles = {
            "githubDeployRoleArn": github.deploy_role.arn,
            "githubInfraRoleArn": github.infra_role.arn,
            "githubPreviewRoleArn": github.preview_role.arn,
        }

    return {
        **github_roles,
        "albDnsName": lb.alb.dns_name,
        "cloudfrontDomain": frontend.distribution.domain_name,
        "cloudfrontDistributionId": frontend.distribution.id,
        "rdsEndpoint": database.primary.endpoint,
        "rdsReplicaEndpoints": database.replica_endpoints,
        "valkeyEndpoint": cache.replication_group.primary_endpoint_address,
        "ecrRepositoryUrl": services.repository.repository_url,
        "backupBucket": backups.bucket.bucket,
        "frontendBucket": frontend.bucket.bucket,
        "clusterName": services.cluster.name,
        "apiServiceName": services.api_service.name,
        "ingestorServiceName": services.ingestor_service.name,
        "alertsTopicArn": monitoring.topic.arn,
        "bootstrapRolesCommand": services.run_task_command(services.bootstrap_roles_task_definition, services_args),
        "migrateCommand": services.run_task_command(services.migrate_task_definition, services_args),
        # On demand, e.g. before a risky change (append --overrides to run `db restore` from it).
        "backupCommand": services.run_task_command(services.backup_task_definition, services_args),
        "verifyBackupCommand": services.run_task_command(services.verify_backup_task_definition, services_args),
        "connectionBudget": report.message(),
    }
