"""The CrossGuard pack: the real stacks pass it, and every policy catches what it is about."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
import sage_policies as policies
from policy_support import Example, resource_violations, stack_violations
from stack_record import Resource, StackRecord


def edited(stack: StackRecord, name: str, change: dict[str, Any], *, drop: tuple[str, ...] = ()) -> list[Resource]:
    """The stack's resources with one resource's outputs changed (or some resources removed)."""
    out = []
    for resource in stack:
        if resource.name in drop:
            continue
        if resource.name == name:
            resource = dataclasses.replace(resource, state={**copy.deepcopy(resource.state), **change})
        out.append(resource)
    return out


# --- the real program passes ------------------------------------------------------------------


@pytest.mark.parametrize("policy", policies.RESOURCE_POLICIES, ids=lambda p: p.name)
def test_every_declared_resource_passes(deployable: list[StackRecord], policy: Any) -> None:
    for stack in deployable:
        for resource in stack:
            assert resource_violations(policy, resource.type, resource.inputs) == [], (stack.scenario, resource.name)


@pytest.mark.parametrize("policy", policies.STACK_POLICIES, ids=lambda p: p.name)
def test_every_stack_passes(deployable: list[StackRecord], policy: Any) -> None:
    for stack in deployable:
        assert stack_violations(policy, stack) == [], stack.scenario


def test_the_pack_holds_every_mandatory_rule_of_the_issue() -> None:
    assert {p.name for p in policies.ALL_POLICIES} == {
        "storage-encryption",
        "data-tier-not-public",
        "data-tier-isolated",
        "s3-buckets-private-and-encrypted",
        "open-ingress-only-alb-web",
        "tls-minimums",
        "prod-database-protection",
        "log-retention",
        "ecr-scan-on-push-immutable-tags",
        "no-wildcard-iam-actions",
        "no-plaintext-secrets-in-environment",
        "connection-budget",
        "alarms-never-lost",
        "github-oidc-trust-pinned",
        "cloudfront-behind-waf",
        "alb-admits-only-cloudfront",
    }
    assert all(p.enforcement_level.value == "mandatory" for p in policies.ALL_POLICIES)


# --- resource policies: failing examples ---------------------------------------------------------

RDS = "aws:rds/instance:Instance"


@pytest.mark.parametrize(
    ("resource_type", "props", "message"),
    [
        (RDS, {"storageEncrypted": False}, "RDS storage must be encrypted"),
        ("aws:elasticache/replicationGroup:ReplicationGroup", {"transitEncryptionEnabled": True}, "at rest"),
        ("aws:elasticache/replicationGroup:ReplicationGroup", {"atRestEncryptionEnabled": True}, "in transit"),
        ("aws:sns/topic:Topic", {"name": "sage-alerts"}, "SNS topics must be encrypted"),
        ("aws:sqs/queue:Queue", {"name": "sage-alarms-dlq"}, "SQS queues must be encrypted"),
    ],
)
def test_storage_encryption_rejects(resource_type: str, props: dict[str, Any], message: str) -> None:
    (found,) = resource_violations(policies.storage_encryption, resource_type, props)
    assert message in found


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (RDS, {"storageEncrypted": True, "publiclyAccessible": True}),
        ("aws:s3/bucketAcl:BucketAcl", {"acl": "public-read"}),
        (
            "aws:s3/bucketPolicy:BucketPolicy",
            {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]})},
        ),
    ],
)
def test_data_tier_not_public_rejects(resource_type: str, props: dict[str, Any]) -> None:
    assert len(resource_violations(policies.data_tier_not_public, resource_type, props)) == 1


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        ("aws:lb/listener:Listener", {"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-2016-08"}),
        ("aws:lb/listener:Listener", {"protocol": "HTTP", "defaultActions": [{"type": "forward"}]}),
        (
            "aws:cloudfront/distribution:Distribution",
            {"viewerCertificate": {"acmCertificateArn": "arn", "minimumProtocolVersion": "TLSv1_2016"}},
        ),
        ("aws:cloudfront/distribution:Distribution", {"viewerCertificate": {"cloudfrontDefaultCertificate": True}}),
        (
            "aws:cloudfront/distribution:Distribution",
            {
                "viewerCertificate": {"minimumProtocolVersion": "TLSv1.2_2021"},
                "defaultCacheBehavior": {"viewerProtocolPolicy": "allow-all"},
            },
        ),
        (
            "aws:cloudfront/distribution:Distribution",
            {
                "viewerCertificate": {"minimumProtocolVersion": "TLSv1.2_2021"},
                "origins": [{"originId": "alb", "customOriginConfig": {"originProtocolPolicy": "http-only"}}],
            },
        ),
    ],
)
def test_tls_minimums_reject(resource_type: str, props: dict[str, Any]) -> None:
    assert len(resource_violations(policies.tls_minimums, resource_type, props)) == 1


PROD_DB = {
    "tags": {"Environment": "prod"},
    "deletionProtection": True,
    "backupRetentionPeriod": 7,
    "skipFinalSnapshot": False,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"deletionProtection": False}, "deletion protection"),
        ({"backupRetentionPeriod": 3}, "at least 7 days"),
        ({"skipFinalSnapshot": True}, "final snapshot"),
    ],
)
def test_prod_database_protection_rejects(change: dict[str, Any], message: str) -> None:
    (found,) = resource_violations(policies.prod_database_protection, RDS, {**PROD_DB, **change})
    assert message in found


def test_prod_database_protection_ignores_dev_and_replicas() -> None:
    assert (
        resource_violations(
            policies.prod_database_protection,
            RDS,
            {**PROD_DB, "tags": {"Environment": "dev"}, "deletionProtection": False},
        )
        == []
    )
    assert (
        resource_violations(
            policies.prod_database_protection, RDS, {**PROD_DB, "replicateSourceDb": "x", "backupRetentionPeriod": 0}
        )
        == []
    )


def test_log_retention_rejects_a_group_kept_forever() -> None:
    assert resource_violations(policies.log_retention, "aws:cloudwatch/logGroup:LogGroup", {"name": "/ecs/x"})


@pytest.mark.parametrize(
    "props",
    [
        {"imageScanningConfiguration": {"scanOnPush": False}, "imageTagMutability": "IMMUTABLE"},
        {"imageScanningConfiguration": {"scanOnPush": True}, "imageTagMutability": "MUTABLE"},
    ],
)
def test_ecr_policy_rejects(props: dict[str, Any]) -> None:
    assert len(resource_violations(policies.ecr_scan_immutable, "aws:ecr/repository:Repository", props)) == 1


def _repository(mutability: str, *filters: str) -> dict[str, Any]:
    return {
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": mutability,
        "imageTagMutabilityExclusionFilters": [{"filter": f, "filterType": "WILDCARD"} for f in filters],
    }


@pytest.mark.parametrize(
    "props", [_repository("IMMUTABLE"), _repository("IMMUTABLE_WITH_EXCLUSION", "latest")], ids=["plain", "latest"]
)
def test_ecr_policy_accepts_immutable_tags_with_only_latest_exempted(props: dict[str, Any]) -> None:
    assert resource_violations(policies.ecr_scan_immutable, "aws:ecr/repository:Repository", props) == []


@pytest.mark.parametrize(
    "props",
    [
        _repository("IMMUTABLE_WITH_EXCLUSION"),
        _repository("IMMUTABLE_WITH_EXCLUSION", "latest*"),
        _repository("IMMUTABLE_WITH_EXCLUSION", "*"),
        _repository("IMMUTABLE_WITH_EXCLUSION", "latest", "v1.*"),
        _repository("IMMUTABLE_WITH_EXCLUSION", "stable"),
        {**_repository("IMMUTABLE_WITH_EXCLUSION"), "imageTagMutabilityExclusionFilters": [{"filter": "latest"}]},
        _repository("MUTABLE_WITH_EXCLUSION", "latest"),
    ],
    ids=["no-filter", "latest-wildcard", "everything", "latest-and-more", "other-tag", "no-type", "mutable"],
)
def test_ecr_policy_rejects_exemptions_beyond_exactly_latest(props: dict[str, Any]) -> None:
    (found,) = resource_violations(policies.ecr_scan_immutable, "aws:ecr/repository:Repository", props)
    assert "immutab" in found


def _policy(action: Any, key: str = "Action") -> dict[str, Any]:
    return {
        "policy": json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", key: action, "Resource": "*"}]}
        )
    }


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        ("aws:iam/rolePolicy:RolePolicy", _policy("s3:*")),
        ("aws:iam/rolePolicy:RolePolicy", _policy(["logs:PutLogEvents", "*"])),
        ("aws:iam/rolePolicy:RolePolicy", _policy("iam:PassRole", key="NotAction")),
        ("aws:iam/policy:Policy", _policy("secretsmanager:*")),
        ("aws:iam/role:Role", {"inlinePolicies": [_policy("*")]}),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        ),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
        ),
    ],
)
def test_no_wildcard_iam_actions_rejects(resource_type: str, props: dict[str, Any]) -> None:
    assert len(resource_violations(policies.no_wildcard_iam_actions, resource_type, props)) == 1


def _task(environment: dict[str, str]) -> dict[str, Any]:
    return {
        "containerDefinitions": json.dumps(
            [{"name": "backend", "environment": [{"name": k, "value": v} for k, v in environment.items()]}]
        )
    }


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        ("aws:ecs/taskDefinition:TaskDefinition", _task({"DATABASE_URL": "postgresql://sage:hunter2@db:5432/sage"})),
        ("aws:ecs/taskDefinition:TaskDefinition", _task({"ANTHROPIC_API_KEY": "anything"})),
        ("aws:ecs/taskDefinition:TaskDefinition", _task({"SAGE_JWT_SECRET": "x" * 40})),
        (
            "aws:ecs/taskDefinition:TaskDefinition",
            _task({"SAGE_DISCORD_WEBHOOK_ERRORS": "https://discord.com/api/webhooks/1/a"}),
        ),
        ("aws:ecs/taskDefinition:TaskDefinition", _task({"PGPASSWORD": "hunter2"})),
        (
            "aws:lambda/function:Function",
            {"environment": {"variables": {"DISCORD_WEBHOOK_ERRORS": "https://discord.com/api/webhooks/1/a"}}},
        ),
    ],
)
def test_no_plaintext_secrets_rejects(resource_type: str, props: dict[str, Any]) -> None:
    assert len(resource_violations(policies.no_plaintext_secrets, resource_type, props)) == 1


def test_no_plaintext_secrets_allows_references_and_ordinary_settings() -> None:
    props = _task(
        {
            "SAGE_LLM_MAX_TOKENS": "1024",
            "DATABASE_URL": "postgresql://db:5432/sage",
            "DISCORD_WEBHOOK_ERRORS_ARN": "arn:aws:secretsmanager:x",
        }
    )
    assert resource_violations(policies.no_plaintext_secrets, "aws:ecs/taskDefinition:TaskDefinition", props) == []


# --- stack policies: failing examples made from the real stack ------------------------------------


def test_connection_budget_rejects_an_autoscaling_ceiling_the_database_cannot_serve(prod: StackRecord) -> None:
    (found,) = stack_violations(policies.connection_budget, edited(prod, "services-api-scaling", {"maxCapacity": 20}))
    assert "worst case 154 connections vs 84 usable on db.t3.micro" in found


def test_connection_budget_counts_the_deployment_surge(prod: StackRecord) -> None:
    (found,) = stack_violations(
        policies.connection_budget, edited(prod, "services-api", {"deploymentMaximumPercent": 200})
    )
    assert "worst case 154 connections" in found


def test_connection_budget_rejects_oversized_pools(prod: StackRecord) -> None:
    definition = next(r for r in prod if r.name == "services-backend-taskdef")
    containers = json.loads(definition.state["containerDefinitions"])
    for entry in containers[0]["environment"]:
        if entry["name"] == "SAGE_DB_POOL_SIZE":
            entry["value"] = "10"
    stack = edited(prod, definition.name, {"containerDefinitions": json.dumps(containers)})
    (found,) = stack_violations(policies.connection_budget, stack)
    assert "vs 84 usable" in found


def container_edit(stack: StackRecord, name: str, edit: Any) -> list[Resource]:
    definition = next(r for r in stack if r.name == name)
    containers = json.loads(definition.state["containerDefinitions"])
    edit(containers[0])
    return edited(stack, definition.name, {"containerDefinitions": json.dumps(containers)})


def test_connection_budget_adds_up_to_the_programs_figure(prod: StackRecord) -> None:
    # The program reports 84 of 84 for the MVP (the migration's pg_dump included): one more
    # connection anywhere, here the ingestor's overflow, must trip the policy too.
    def one_more(container: dict[str, Any]) -> None:
        for entry in container["environment"]:
            if entry["name"] == "SAGE_DB_MAX_OVERFLOW":
                entry["value"] = str(int(entry["value"]) + 1)

    (found,) = stack_violations(policies.connection_budget, container_edit(prod, "services-ingestor-taskdef", one_more))
    assert "worst case 85 connections vs 84 usable" in found


def test_connection_budget_counts_only_commands_that_never_overlap_once(prod: StackRecord) -> None:
    # verify-backup shares the backup's slot; the same task running `db restore` does not.
    def restore(container: dict[str, Any]) -> None:
        container["command"] = ["db", "restore", "latest"]

    (found,) = stack_violations(
        policies.connection_budget, container_edit(prod, "services-verify-backup-taskdef", restore)
    )
    assert "worst case 87 connections vs 84 usable" in found


def test_data_tier_isolated_rejects_a_database_subnet_with_a_nat_route(prod: StackRecord) -> None:
    stack = edited(prod, "network-database-rt", {"routes": [{"cidrBlock": "0.0.0.0/0", "natGatewayId": "nat-1"}]})
    assert len(stack_violations(policies.data_tier_isolated, stack)) == 4, "two subnets in each of two groups"


def test_data_tier_isolated_rejects_address_based_database_ingress(prod: StackRecord) -> None:
    stack = edited(
        prod, "security-database-from-backend", {"cidrIpv4": "10.0.0.0/16", "referencedSecurityGroupId": None}
    )
    (found,) = stack_violations(policies.data_tier_isolated, stack)
    assert "only from security groups" in found


def test_open_ingress_rejects_ssh_from_anywhere(prod: StackRecord) -> None:
    stack = edited(
        prod, "security-alb-https", {"fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0", "prefixListId": None}
    )
    (found,) = stack_violations(policies.open_ingress_only_alb_web, stack)
    assert "0.0.0.0/0 ingress is allowed only on the ALB's ports 80 and 443" in found


def test_open_ingress_rejects_web_ports_opened_on_the_tasks(prod: StackRecord) -> None:
    stack = edited(prod, "security-backend-from-alb", {"cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443})
    assert len(stack_violations(policies.open_ingress_only_alb_web, stack)) == 1


def test_open_ingress_rejects_inline_rules_too() -> None:
    sg = Example(
        "wide-open",
        "aws:ec2/securityGroup:SecurityGroup",
        {"ingress": [{"protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["0.0.0.0/0"]}]},
    )
    assert len(stack_violations(policies.open_ingress_only_alb_web, [sg])) == 1


def test_s3_policy_rejects_a_bucket_without_encryption_or_access_block(prod: StackRecord) -> None:
    stack = edited(prod, "", {}, drop=("frontend-bucket-encryption", "frontend-bucket-public-access"))
    found = stack_violations(policies.s3_buckets_private_and_encrypted, stack)
    assert len(found) == 2 and any("encryption" in f for f in found) and any("public access" in f for f in found)


# --- alarms-never-lost: the real stack with one safeguard taken away -------------------------------


def test_alarms_never_lost_rejects_a_subscription_without_redrive(prod: StackRecord) -> None:
    (found,) = stack_violations(
        policies.alarms_never_lost, edited(prod, "monitoring-router-subscription", {"redrivePolicy": None})
    )
    assert "needs a redrive policy" in found


def test_alarms_never_lost_rejects_a_router_without_an_on_failure_destination(prod: StackRecord) -> None:
    (found,) = stack_violations(
        policies.alarms_never_lost, edited(prod, "", {}, drop=("monitoring-router-on-failure",))
    )
    assert "has no on-failure destination" in found


def test_alarms_never_lost_rejects_a_router_nobody_watches(prod: StackRecord) -> None:
    (found,) = stack_violations(
        policies.alarms_never_lost, edited(prod, "", {}, drop=("monitoring-path-alarm-router-errors",))
    )
    assert "no alarm watches its Errors" in found


def test_alb_admits_only_cloudfront_rejects_an_address_range(prod: StackRecord) -> None:
    stack = edited(prod, "security-alb-https", {"prefixListId": None, "cidrIpv4": "0.0.0.0/0"})
    (found,) = stack_violations(policies.alb_admits_only_cloudfront, stack)
    assert "admits only CloudFront" in found
