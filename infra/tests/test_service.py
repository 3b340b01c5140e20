"""ECR, the ECS cluster, the four workloads and their IAM roles (spec 2, 12)."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
from scenarios import IMAGE_TAG, SECRETS, VAPID_PUBLIC_KEY
from stack_record import Resource, StackRecord, as_list, environment, secrets, statements

API_SECRETS = {
    "ANTHROPIC_API_KEY": "sage/anthropic-api-key",
    "DATABASE_URL": "sage/database-url",
    "VALKEY_URL": "sage/valkey-url",
    "SAGE_JWT_SECRET": "sage/jwt-secret",
    "SAGE_DISCORD_WEBHOOK_ERRORS": "sage/discord-webhook-errors",
    "SAGE_DISCORD_WEBHOOK_PERFORMANCE": "sage/discord-webhook-performance",
    "SAGE_DISCORD_WEBHOOK_BUSINESS": "sage/discord-webhook-business",
    "SAGE_SMTP_USERNAME": "sage/smtp-username",
    "SAGE_SMTP_PASSWORD": "sage/smtp-password",
    "SAGE_VAPID_PRIVATE_KEY": "sage/vapid-private-key",
}
# The app's production check wants DATABASE_URL, VALKEY_URL and SAGE_JWT_SECRET for every command.
WORKER_SECRETS = {
    k: API_SECRETS[k] for k in ("DATABASE_URL", "VALKEY_URL", "SAGE_JWT_SECRET", "SAGE_DISCORD_WEBHOOK_ERRORS")
}
# Least privilege in PostgreSQL: the API and ingestor connect as sage_app (table reads and
# writes), migrate and verify-backup as sage_owner, backup as sage_readonly; the master's URL
# reaches only the bootstrap-roles task.
OWNER_SECRETS = WORKER_SECRETS | {"DATABASE_URL": "sage/database-url-owner"}
READONLY_SECRETS = WORKER_SECRETS | {"DATABASE_URL": "sage/database-url-readonly"}
DATABASE_URL_OF = {
    "backend": "sage/database-url",
    "ingestor": "sage/database-url",
    "migrate": "sage/database-url-owner",
    "verify-backup": "sage/database-url-owner",
    "backup": "sage/database-url-readonly",
    "bootstrap-roles": "sage/database-url-master",
}
FAMILIES = ("backend", "ingestor", "migrate", "backup", "verify-backup")
# What `sage db backup` calls on S3 (src/sage/ops/storage.py): multipart upload and abort,
# manifest put/get, list, retention deletes, and the sweep of abandoned multipart uploads.
BACKUP_OBJECT_ACTIONS = {
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
}
BACKUP_BUCKET_ACTIONS = {"s3:ListBucket", "s3:ListBucketMultipartUploads"}


def secret_name_of(stack: StackRecord, arn: str) -> str:
    return str(next(s["name"] for s in stack.of_type("secretsmanager/secret") if s.state["arn"] == arn))


def task_definition(stack: StackRecord, suffix: str) -> Resource:
    return next(r for r in stack.of_type("ecs/taskDefinition") if r["family"] == f"{stack_prefix(stack)}-{suffix}")


def stack_prefix(stack: StackRecord) -> str:
    return "sage" if stack.scenario.startswith("prod") else "sage-dev"


def policy_of(stack: StackRecord, role: Resource) -> dict[str, object] | None:
    found = [p for p in stack.of_type("iam/rolePolicy") if p.refers_to("role") == [role.urn]]
    return found[0].json("policy") if found else None


# --- ECR and cluster -------------------------------------------------------------------------


def test_ecr_scans_on_push_with_immutable_tags(prod: StackRecord) -> None:
    repo = prod.one("ecr/repository")
    assert repo["name"] == "sage-backend"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["imageTagMutability"].startswith("IMMUTABLE")


def test_ecr_lets_only_latest_move_so_the_deploy_can_point_it_at_each_release(prod: StackRecord) -> None:
    # The deploy workflow re-tags every release as `latest`; every other tag stays immutable
    # (a wildcard such as `latest*` would free more than that one tag).
    repo = prod.one("ecr/repository")
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["imageTagMutabilityExclusionFilters"] == [{"filter": "latest", "filterType": "WILDCARD"}]


def test_ecr_lifecycle_expires_untagged_and_old_images(prod: StackRecord) -> None:
    rules = prod.one("ecr/lifecyclePolicy").json("policy")["rules"]
    untagged, old = sorted(rules, key=lambda r: r["rulePriority"])
    assert untagged["selection"]["tagStatus"] == "untagged" and untagged["selection"]["countNumber"] == 7
    assert old["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50}


def test_cluster_has_container_insights(prod: StackRecord) -> None:
    cluster = prod.one("ecs/cluster")
    assert cluster["name"] == "sage-cluster"
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enabled"}]


# --- the API task definition --------------------------------------------------------------------


def test_api_task_is_half_a_vcpu_and_a_gigabyte_on_fargate(prod: StackRecord) -> None:
    td = task_definition(prod, "backend")
    assert (td["cpu"], td["memory"]) == ("512", "1024")
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc"


def test_api_container_runs_sage_serve_on_port_3000_read_only(prod: StackRecord) -> None:
    c = prod.container("backend")
    assert c["image"] == f"123456789012.dkr.ecr.us-west-2.amazonaws.com/sage-backend:{IMAGE_TAG}"
    assert c["entryPoint"] + c["command"] == ["sage", "serve"]
    assert c["portMappings"][0]["containerPort"] == 3000
    assert c["readonlyRootFilesystem"] is True
    assert c["mountPoints"] == [{"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False}]  # noqa: S108


def test_api_container_health_check_calls_health(prod: StackRecord) -> None:
    check = prod.container("backend")["healthCheck"]
    assert "http://127.0.0.1:3000/health" in " ".join(check["command"])
    assert (check["interval"], check["timeout"], check["retries"], check["startPeriod"]) == (30, 5, 3, 60)


def test_api_health_check_bypasses_proxies_and_wants_a_200_like_the_dockerfile(prod: StackRecord) -> None:
    probe = prod.container("backend")["healthCheck"]["command"][-1]
    assert "ProxyHandler({})" in probe and "r.status == 200" in probe
    compile(probe, "<healthCheck>", "exec")


def test_api_logs_go_to_a_retained_log_group(prod: StackRecord) -> None:
    options = prod.container("backend")["logConfiguration"]["options"]
    assert prod.container("backend")["logConfiguration"]["logDriver"] == "awslogs"
    group = next(g for g in prod.of_type("cloudwatch/logGroup") if g["name"] == options["awslogs-group"])
    assert group["name"] == "/ecs/sage-backend" and group["retentionInDays"] == 30
    assert options["awslogs-region"] == "us-west-2"


def test_api_environment_matches_the_app_settings(prod: StackRecord) -> None:
    env = environment(prod.container("backend"))
    assert env["SAGE_ENV"] == "production"
    assert (env["SAGE_HOST"], env["SAGE_PORT"]) == ("0.0.0.0", "3000")
    assert env["SAGE_TRUSTED_PROXY_HOPS"] == "2"  # viewer -> CloudFront -> ALB (X-Forwarded-For: ..., viewer, edge)
    assert (env["SAGE_DB_POOL_SIZE"], env["SAGE_DB_MAX_OVERFLOW"], env["SAGE_WORKERS"]) == ("5", "2", "1")
    assert env["SAGE_MARKET_SOURCE"] == "live" and env["SAGE_INGEST_IN_PROCESS"] == "false"
    assert env["SAGE_RELEASE"] == IMAGE_TAG


def test_api_sends_alert_emails_and_pushes_with_the_stack_settings(prod: StackRecord) -> None:
    env = environment(prod.container("backend"))
    assert env["SAGE_PUBLIC_URL"] == "https://app.sage.ai"
    assert (env["SAGE_SMTP_HOST"], env["SAGE_SMTP_PORT"]) == ("email-smtp.us-west-2.amazonaws.com", "587")
    assert env["SAGE_SMTP_FROM"] == "Sage <alerts@app.sage.ai>"
    assert env["SAGE_WEB_PUSH_ENABLED"] == "true"
    assert (env["SAGE_VAPID_PUBLIC_KEY"], env["SAGE_VAPID_SUBJECT"]) == (VAPID_PUBLIC_KEY, "mailto:alerts@app.sage.ai")
    wired = {name: secret_name_of(prod, arn) for name, arn in secrets(prod.container("backend")).items()}
    assert (wired["SAGE_SMTP_USERNAME"], wired["SAGE_SMTP_PASSWORD"], wired["SAGE_VAPID_PRIVATE_KEY"]) == (
        "sage/smtp-username",
        "sage/smtp-password",
        "sage/vapid-private-key",
    )
    # only the API sends them: the other tasks never receive the credentials
    for family in FAMILIES:
        if family != "backend":
            assert not {"SAGE_SMTP_USERNAME", "SAGE_SMTP_PASSWORD", "SAGE_VAPID_PRIVATE_KEY"} & set(
                secrets(prod.container(family))
            )


def test_the_app_accepts_the_notification_settings_the_stack_gives_it(prod: StackRecord) -> None:
    """The API's environment, with its secrets filled in, passes the app's production check."""
    from sage.settings import Settings

    env = environment(prod.container("backend"))
    keys = {k.removeprefix("SAGE_").lower(): v for k, v in env.items() if k.startswith(("SAGE_SMTP", "SAGE_VAPID"))}
    settings = Settings(
        env="production",
        database_url="postgresql+asyncpg://u:p@db/sage",
        valkey_url="redis://cache:6379/0",
        jwt_secret=SECRETS["jwtSecret"],
        llm_provider="offline",
        public_url=env["SAGE_PUBLIC_URL"],
        web_push_enabled=env["SAGE_WEB_PUSH_ENABLED"] == "true",
        smtp_username=SECRETS["smtpUsername"],
        smtp_password=SECRETS["smtpPassword"],
        vapid_private_key=SECRETS["vapidPrivateKey"],
        **keys,
    )
    settings.check_production()
    assert settings.smtp_port == 587 and settings.web_push_enabled


def test_api_credentials_arrive_as_secrets_from_the_right_entries(prod: StackRecord) -> None:
    wired = {name: secret_name_of(prod, arn) for name, arn in secrets(prod.container("backend")).items()}
    assert wired == API_SECRETS
    assert not set(API_SECRETS) & set(environment(prod.container("backend")))


def test_sentry_dsn_is_a_secret_when_configured(dev: StackRecord) -> None:
    for family in FAMILIES:
        assert secret_name_of(dev, secrets(dev.container(family))["SENTRY_DSN"]) == "sage-dev/sentry-dsn"


@pytest.mark.parametrize("family", FAMILIES)
def test_no_secret_value_appears_in_any_task_definition(deployable: list[StackRecord], family: str) -> None:
    for stack in deployable:
        definition = task_definition(stack, family)
        text = json.dumps(definition.inputs)
        for value in SECRETS.values():
            assert value not in text, (stack.scenario, family)
        assert definition.secret_paths == (), "nothing secret flows into the definition"


# --- the API service ---------------------------------------------------------------------------


def test_api_service_sits_behind_the_alb_in_private_subnets(prod: StackRecord) -> None:
    svc = prod.named("services-api")
    assert svc["name"] == "sage-backend" and svc["launchType"] == "FARGATE" and svc["platformVersion"] == "1.4.0"
    (lb,) = svc["loadBalancers"]
    assert (lb["containerName"], lb["containerPort"]) == ("backend", 3000)
    assert prod.resolve(svc.refers_to("loadBalancers")) == [prod.one("lb/targetGroup")]
    network = svc["networkConfiguration"]
    assert network["assignPublicIp"] is False
    subnets = prod.resolve([u for u in svc.refers_to("networkConfiguration") if "subnet" in u])
    assert {s["tags"]["Tier"] for s in subnets} == {"private"} and len(subnets) == 2
    assert svc["healthCheckGracePeriodSeconds"] == 60


def test_api_deployments_roll_back_on_failure(prod: StackRecord) -> None:
    assert prod.named("services-api")["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}


def test_autoscaling_owns_the_desired_count(prod: StackRecord) -> None:
    svc = prod.named("services-api")
    assert "desiredCount" in svc.ignore_changes
    assert svc["desiredCount"] == 2


@pytest.mark.parametrize("service", ["services-api", "services-ingestor"])
def test_deploys_own_the_revision_a_service_runs(deployable: list[StackRecord], service: str) -> None:
    # The deploy workflow points the services at revisions it registers; without this, the
    # next `pulumi up` would roll them back to the image `imageTag` names.
    for stack in deployable:
        svc = stack.named(service)
        assert "taskDefinition" in svc.ignore_changes, stack.scenario
        assert set(svc.ignore_changes) <= {"taskDefinition", "desiredCount"}, "nothing else is left to drift"


def test_autoscaling_tracks_70_percent_cpu_with_spec_cooldowns(prod: StackRecord) -> None:
    target = prod.one("appautoscaling/target")
    assert target["resourceId"] == "service/sage-cluster/sage-backend"
    assert target["scalableDimension"] == "ecs:service:DesiredCount"
    policy = prod.one("appautoscaling/policy")
    assert policy["policyType"] == "TargetTrackingScaling"
    config = policy["targetTrackingScalingPolicyConfiguration"]
    assert config["targetValue"] == 70
    assert config["predefinedMetricSpecification"] == {"predefinedMetricType": "ECSServiceAverageCPUUtilization"}
    assert (config["scaleInCooldown"], config["scaleOutCooldown"]) == (300, 60)


def test_task_counts_follow_the_phase(prod: StackRecord, growth: StackRecord, scale: StackRecord) -> None:
    bounds = {
        s.scenario: (s.one("appautoscaling/target")["minCapacity"], s.one("appautoscaling/target")["maxCapacity"])
        for s in (prod, growth, scale)
    }
    assert bounds == {"prod-mvp": (2, 10), "prod-growth": (5, 10), "prod-scale": (10, 20)}
    assert growth.named("services-api")["desiredCount"] == 5


def test_mvp_deploys_inside_the_task_ceiling_to_protect_the_database(prod: StackRecord, growth: StackRecord) -> None:
    mvp = prod.named("services-api")
    assert (mvp["deploymentMaximumPercent"], mvp["deploymentMinimumHealthyPercent"]) == (100, 50)
    grown = growth.named("services-api")
    assert (grown["deploymentMaximumPercent"], grown["deploymentMinimumHealthyPercent"]) == (200, 100)


# --- ingestor, migrations, backups ---------------------------------------------------------------


def test_exactly_one_ingestor_runs_and_is_replaced_stop_then_start(prod: StackRecord) -> None:
    svc = prod.named("services-ingestor")
    assert svc["desiredCount"] == 1
    assert (svc["deploymentMaximumPercent"], svc["deploymentMinimumHealthyPercent"]) == (100, 0)
    assert "loadBalancers" not in svc.inputs
    c = prod.container("ingestor")
    assert c["command"] == ["ingest"]
    env = environment(c)
    assert (env["SAGE_DB_POOL_SIZE"], env["SAGE_DB_MAX_OVERFLOW"]) == ("2", "1")
    assert {k: secret_name_of(prod, v) for k, v in secrets(c).items()} == WORKER_SECRETS


def test_migration_is_a_one_off_task_definition(prod: StackRecord) -> None:
    td = task_definition(prod, "migrate")
    assert prod.container("migrate")["command"] == ["db", "migrate"]
    services = {u for s in prod.of_type("ecs/service") for u in s.refers_to("taskDefinition")}
    assert td.urn not in services
    assert "--task-definition sage-migrate" in prod.output("migrateCommand")


def test_backup_task_writes_to_the_backup_bucket(prod: StackRecord) -> None:
    c = prod.container("backup")
    assert c["command"] == ["db", "backup"]
    assert environment(c)["SAGE_BACKUP_URL"] == f"s3://{prod.output('backupBucket')}/postgres"
    assert {k: secret_name_of(prod, v) for k, v in secrets(c).items()} == READONLY_SECRETS


def test_migration_backs_up_to_the_same_bucket_as_the_backup_task(deployable: list[StackRecord]) -> None:
    # `sage db migrate` backs up before migrating; without the URL the dump would land on the
    # task's ephemeral disk and vanish with it.
    for stack in deployable:
        url = environment(stack.container("migrate")).get("SAGE_BACKUP_URL")
        assert url == environment(stack.container("backup"))["SAGE_BACKUP_URL"], stack.scenario
        assert url == f"s3://{stack.output('backupBucket')}/postgres"


def test_verify_backup_task_restores_the_latest_backup_with_one_restore_job(prod: StackRecord) -> None:
    c = prod.container("verify-backup")
    assert c["entryPoint"] + c["command"] == ["sage", "db", "verify-backup", "latest", "--jobs", "1"]
    env = environment(c)
    assert env["SAGE_BACKUP_URL"] == f"s3://{prod.output('backupBucket')}/postgres"
    assert (env["SAGE_DB_POOL_SIZE"], env["SAGE_DB_MAX_OVERFLOW"]) == ("1", "1")
    assert {k: secret_name_of(prod, v) for k, v in secrets(c).items()} == OWNER_SECRETS
    services = {u for s in prod.of_type("ecs/service") for u in s.refers_to("taskDefinition")}
    assert task_definition(prod, "verify-backup").urn not in services
    assert "--task-definition sage-verify-backup" in prod.output("verifyBackupCommand")


def rule_named(stack: StackRecord, name: str) -> Resource:
    (rule,) = [r for r in stack.of_type("cloudwatch/eventRule") if r["name"] == name]
    return rule


def target_of(stack: StackRecord, rule: Resource) -> Resource:
    (target,) = [t for t in stack.of_type("cloudwatch/eventTarget") if stack.resolve(t.refers_to("rule")) == [rule]]
    return target


@pytest.mark.parametrize(
    ("rule_name", "family", "schedule"),
    [
        ("sage-db-backup", "backup", "cron(0 2 * * ? *)"),
        ("sage-db-verify-backup", "verify-backup", "cron(0 4 ? * SUN *)"),
    ],
)
def test_eventbridge_runs_the_scheduled_db_tasks(prod: StackRecord, rule_name: str, family: str, schedule: str) -> None:
    rule = rule_named(prod, rule_name)
    assert rule["scheduleExpression"] == schedule
    target = target_of(prod, rule)
    assert prod.resolve(target.refers_to("arn")) == [prod.one("ecs/cluster")]
    ecs = target["ecsTarget"]
    assert ecs["launchType"] == "FARGATE" and ecs["taskCount"] == 1
    assert ecs["networkConfiguration"]["assignPublicIp"] is False


FAMILY_ARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/sage-{}"


@pytest.mark.parametrize(
    ("rule_name", "family"), [("sage-db-backup", "backup"), ("sage-db-verify-backup", "verify-backup")]
)
def test_scheduled_db_tasks_run_the_latest_revision_of_their_family(
    prod: StackRecord, rule_name: str, family: str
) -> None:
    # RunTask with a bare family starts its latest ACTIVE revision, i.e. the last deploy's
    # image; the revision this program registered would keep running the bootstrap image.
    ecs = target_of(prod, rule_named(prod, rule_name))["ecsTarget"]
    assert ecs["taskDefinitionArn"] == FAMILY_ARN.format(family)
    assert re.search(r":\d+$", ecs["taskDefinitionArn"]) is None
    assert task_definition(prod, family).state["arn"] == f"{ecs['taskDefinitionArn']}:1"


@pytest.mark.parametrize(
    ("rule_name", "family"), [("sage-db-backup", "backup"), ("sage-db-verify-backup", "verify-backup")]
)
def test_scheduler_may_run_every_revision_its_family_target_resolves_to(
    prod: StackRecord, rule_name: str, family: str
) -> None:
    # ECS authorizes a family-only RunTask against the revision it picks, so the policy names
    # `<family>:*`, which covers any revision a later deploy registers and no other family.
    target = target_of(prod, rule_named(prod, rule_name))
    (role,) = prod.resolve(target.refers_to("roleArn"))
    document = policy_of(prod, role)
    assert document is not None
    (run_task,) = [s for s in statements(document) if s["Action"] == "ecs:RunTask"]
    pattern = run_task["Resource"]
    family_arn = target["ecsTarget"]["taskDefinitionArn"]
    assert all(fnmatch.fnmatchcase(f"{family_arn}:{n}", pattern) for n in (1, 2, 417))
    others = [f"{FAMILY_ARN.format(other)}:3" for other in FAMILIES if other != family]
    assert not [arn for arn in [*others, f"{family_arn}-restore:1"] if fnmatch.fnmatchcase(arn, pattern)]


@pytest.mark.parametrize(
    ("rule_name", "family"), [("sage-db-backup", "backup"), ("sage-db-verify-backup", "verify-backup")]
)
def test_each_scheduler_may_only_run_its_task_and_pass_its_roles(
    prod: StackRecord, rule_name: str, family: str
) -> None:
    (role,) = prod.resolve(target_of(prod, rule_named(prod, rule_name)).refers_to("roleArn"))
    document = policy_of(prod, role)
    assert document is not None
    by_sid = {s["Sid"]: s for s in statements(document)}
    assert by_sid["RunTask"]["Resource"] == f"arn:aws:ecs:us-west-2:123456789012:task-definition/sage-{family}:*"
    td = task_definition(prod, family)
    assert set(by_sid["PassTaskRoles"]["Resource"]) == {td["executionRoleArn"], td["taskRoleArn"]}


def test_failed_or_unstarted_scheduled_db_tasks_are_caught(prod: StackRecord) -> None:
    rule = rule_named(prod, "sage-db-task-failed")
    pattern = json.loads(rule["eventPattern"])
    assert (pattern["source"], pattern["detail-type"]) == (["aws.ecs"], ["ECS Task State Change"])
    detail = pattern["detail"]
    assert detail["clusterArn"] == [prod.one("ecs/cluster").state["arn"]]
    assert detail["lastStatus"] == ["STOPPED"]
    families = "arn:aws:ecs:us-west-2:123456789012:task-definition/sage-"
    assert detail["taskDefinitionArn"] == [{"prefix": f"{families}backup:"}, {"prefix": f"{families}verify-backup:"}]
    assert {"containers": {"exitCode": [{"anything-but": 0}]}} in detail["$or"]
    assert {"stopCode": ["TaskFailedToStart"]} in detail["$or"]
    (logs,) = prod.resolve(target_of(prod, rule).refers_to("arn"))
    assert logs["name"] == "/aws/events/sage-db-task-failures" and logs["retentionInDays"] == 30


# --- IAM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_execution_role_reads_exactly_the_secrets_of_its_task(deployable: list[StackRecord], family: str) -> None:
    for stack in deployable:
        td = task_definition(stack, family)
        (role,) = stack.resolve(td.refers_to("executionRoleArn"))
        document = policy_of(stack, role)
        assert document is not None
        by_sid = {s["Sid"]: s for s in statements(document)}
        wanted = set(secrets(stack.container(family)).values())
        assert set(as_list(by_sid["ReadSecrets"]["Resource"])) == wanted, (stack.scenario, family)
        assert by_sid["ReadSecrets"]["Action"] == "secretsmanager:GetSecretValue"
        assert by_sid["PullImage"]["Resource"] == stack.one("ecr/repository").state["arn"]
        assert by_sid["WriteLogs"]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]


@pytest.mark.parametrize("family", ["backend", "ingestor"])
def test_task_roles_of_code_that_calls_no_aws_api_grant_nothing(prod: StackRecord, family: str) -> None:
    (role,) = prod.resolve(task_definition(prod, family).refers_to("taskRoleArn"))
    assert policy_of(prod, role) is None
    assert not [a for a in prod.of_type("iam/rolePolicyAttachment") if a.refers_to("role") == [role.urn]]


def s3_grants(stack: StackRecord, family: str) -> dict[str, set[str]]:
    """Resource -> actions the task role of a family allows (only S3, only the backup prefix)."""
    (role,) = stack.resolve(task_definition(stack, family).refers_to("taskRoleArn"))
    document = policy_of(stack, role)
    assert document is not None
    bucket_arn = f"arn:aws:s3:::{stack.output('backupBucket')}"
    grants: dict[str, set[str]] = {}
    for statement in statements(document):
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            assert resource in (bucket_arn, f"{bucket_arn}/postgres/*"), (family, resource)
            grants.setdefault("bucket" if resource == bucket_arn else "objects", set()).update(
                as_list(statement["Action"])
            )
        if "s3:ListBucket" in as_list(statement["Action"]):
            assert statement["Condition"] == {"StringLike": {"s3:prefix": ["postgres", "postgres/*"]}}
    return grants


@pytest.mark.parametrize("family", ["backup", "migrate"])
def test_backup_and_migration_roles_allow_exactly_what_sage_db_backup_calls(prod: StackRecord, family: str) -> None:
    assert s3_grants(prod, family) == {"objects": BACKUP_OBJECT_ACTIONS, "bucket": BACKUP_BUCKET_ACTIONS}


def test_listing_multipart_uploads_is_not_conditioned_on_a_prefix_it_does_not_support(prod: StackRecord) -> None:
    (role,) = prod.resolve(task_definition(prod, "backup").refers_to("taskRoleArn"))
    document = policy_of(prod, role)
    assert document is not None
    (sweep,) = [s for s in statements(document) if "s3:ListBucketMultipartUploads" in as_list(s["Action"])]
    assert "Condition" not in sweep and as_list(sweep["Action"]) == ["s3:ListBucketMultipartUploads"]


def test_verify_backup_role_only_reads_the_backup_prefix(prod: StackRecord) -> None:
    assert s3_grants(prod, "verify-backup") == {"objects": {"s3:GetObject"}, "bucket": {"s3:ListBucket"}}


def test_each_one_off_task_has_its_own_task_role(prod: StackRecord) -> None:
    roles = {task_definition(prod, f)["taskRoleArn"] for f in ("migrate", "backup", "verify-backup")}
    assert len(roles) == 3


def test_task_roles_trust_only_ecs_tasks_of_this_account(prod: StackRecord) -> None:
    for family in FAMILIES:
        td = task_definition(prod, family)
        for prop in ("taskRoleArn", "executionRoleArn"):
            (role,) = prod.resolve(td.refers_to(prop))
            (trust,) = statements(json.loads(role["assumeRolePolicy"]))
            assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
            assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


def test_the_first_deployment_creates_the_repository_before_the_services(prod: StackRecord) -> None:
    # The services are created with `imageTag`'s image and no later `up` changes it, so that
    # image must be pushed before they exist: the README's first step targets the repository.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    targets = re.findall(r"--target '([^']+)'", readme)
    assert targets, "infra/README.md lists the targeted update of the first deployment"
    assert [prod.by_urn[urn].type for urn in targets] == ["aws:ecr/repository:Repository"]


# --- database roles ----------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "secret_name"), sorted(DATABASE_URL_OF.items()))
def test_each_workload_connects_as_its_own_database_role(
    deployable: list[StackRecord], family: str, secret_name: str
) -> None:
    for stack in deployable:
        expected = secret_name.replace("sage/", f"{stack_prefix(stack)}/")
        assert secret_name_of(stack, secrets(stack.container(family))["DATABASE_URL"]) == expected


def test_the_master_credentials_reach_only_the_bootstrap_task(prod: StackRecord) -> None:
    master = {
        s.state["arn"]
        for s in prod.of_type("secretsmanager/secret")
        if s["name"] in ("sage/db-master", "sage/database-url-master")
    }
    passwords = next(
        s.state["arn"] for s in prod.of_type("secretsmanager/secret") if s["name"] == "sage/db-role-passwords"
    )
    for definition in prod.of_type("ecs/taskDefinition"):
        (container,) = definition.json("containerDefinitions")
        used = set(secrets(container).values())
        if definition["family"] == "sage-bootstrap-roles":
            assert used & master
            assert {v for v in used if v.startswith(passwords)} == {
                f"{passwords}:{k}::" for k in ("owner", "app", "readonly")
            }
        else:
            assert not used & master and not any(v.startswith(passwords) for v in used), definition["family"]
    for role in prod.of_type("iam/role"):
        document = policy_of(prod, role)
        readable = {
            arn
            for s in (statements(document) if document else [])
            if "secretsmanager:GetSecretValue" in as_list(s["Action"])
            for arn in as_list(s["Resource"])
        }
        if readable & (master | {passwords}):
            assert role["name"] == "sage-bootstrap-roles-execution", role["name"]


def test_bootstrap_roles_is_a_one_off_task_with_its_run_command(prod: StackRecord) -> None:
    c = prod.container("bootstrap-roles")
    assert c["command"] == ["db", "bootstrap-roles"]
    assert "SAGE_BACKUP_URL" not in environment(c)
    services = {u for s in prod.of_type("ecs/service") for u in s.refers_to("taskDefinition")}
    assert task_definition(prod, "bootstrap-roles").urn not in services
    assert "--task-definition sage-bootstrap-roles" in prod.output("bootstrapRolesCommand")


@pytest.mark.parametrize(
    ("family", "tag"),
    [
        ("backend", IMAGE_TAG),
        ("ingestor", IMAGE_TAG),
        ("migrate", f"{IMAGE_TAG}-ops"),
        ("backup", f"{IMAGE_TAG}-ops"),
        ("verify-backup", f"{IMAGE_TAG}-ops"),
        ("bootstrap-roles", f"{IMAGE_TAG}-ops"),
    ],
)
def test_only_the_database_tasks_run_the_ops_image_with_the_postgresql_tools(
    prod: StackRecord, family: str, tag: str
) -> None:
    assert prod.container(family)["image"].rsplit(":", 1)[1] == tag
