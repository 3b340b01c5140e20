"""GitHub Actions reach AWS through OIDC roles the program declares: pinned trust, scoped rights."""

from __future__ import annotations

from typing import Any

import pytest
from policy_support import resource_violations
from sage_infra.github_oidc import ISSUER, PREVIEW_DENIED
from sage_policies import github_oidc_trust_pinned, no_wildcard_iam_actions
from scenarios import GITHUB_PROVIDER_ARN, GITHUB_REPOSITORY
from stack_record import Resource, StackRecord, as_list, statements


def role(stack: StackRecord, key: str) -> Resource:
    prefix = "sage" if stack.scenario.startswith("prod") else "sage-dev"
    return next(r for r in stack.of_type("iam/role") if r["name"] == f"{prefix}-github-{key}")


def trust(role: Resource) -> dict[str, Any]:
    (statement,) = statements(role.json("assumeRolePolicy"))
    return statement


def policy(stack: StackRecord, role: Resource) -> dict[str, Any]:
    (found,) = [p for p in stack.of_type("iam/rolePolicy") if p.refers_to("role") == [role.urn]]
    document: dict[str, Any] = found.json("policy")
    return document


def test_prod_creates_githubs_oidc_provider_for_the_sts_audience(prod: StackRecord) -> None:
    provider = prod.one("iam/openIdConnectProvider")
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]


def test_another_stack_in_the_account_reuses_the_provider(dev: StackRecord) -> None:
    assert dev.of_type("iam/openIdConnectProvider") == []
    assert trust(role(dev, "deploy"))["Principal"] == {"Federated": GITHUB_PROVIDER_ARN}


@pytest.mark.parametrize(
    ("scenario", "key", "environment"),
    [
        ("prod-mvp", "deploy", "production"),
        ("prod-mvp", "infra", "infra-prod"),
        ("prod-mvp", "preview", "infra-preview"),
        ("dev", "deploy", "dev"),
        ("dev", "infra", "infra-dev"),
    ],
)
def test_each_role_trusts_one_repository_environment_and_the_sts_audience(
    stack_runs: dict[str, StackRecord], scenario: str, key: str, environment: str
) -> None:
    stack = stack_runs[scenario].ok()
    statement = trust(role(stack, key))
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{ISSUER}:aud": "sts.amazonaws.com",
            f"{ISSUER}:sub": f"repo:{GITHUB_REPOSITORY}:environment:{environment}",
        }
    }


def test_the_deploy_role_reaches_only_this_stacks_release_resources(prod: StackRecord) -> None:
    by_sid = {s["Sid"]: s for s in statements(policy(prod, role(prod, "deploy")))}
    assert by_sid["PushImage"]["Resource"] == prod.one("ecr/repository").state["arn"]
    run = by_sid["RunMigration"]
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": prod.one("ecs/cluster").state["arn"]}}
    assert all(r.startswith("arn:aws:ecs:us-west-2:123456789012:task-definition/sage-") for r in run["Resource"])
    assert set(by_sid["RollServices"]["Resource"]) == {
        "arn:aws:ecs:us-west-2:123456789012:service/sage-cluster/sage-backend",
        "arn:aws:ecs:us-west-2:123456789012:service/sage-cluster/sage-ingestor",
    }
    assert by_sid["PassTaskRoles"]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    frontend = next(b for b in prod.of_type("s3/bucket") if b.name == "frontend-bucket")
    assert by_sid["SyncFrontend"]["Resource"] == f"{frontend.state['arn']}/*"
    assert "secretsmanager:GetSecretValue" not in {a for s in by_sid.values() for a in as_list(s["Action"])}


def test_the_infra_role_names_its_actions_and_stays_in_the_stacks_regions_and_names(prod: StackRecord) -> None:
    document = policy(prod, role(prod, "infra"))
    assert resource_violations(no_wildcard_iam_actions, "aws:iam/rolePolicy:RolePolicy", {"policy": document}) == []
    by_sid = {s["Sid"]: s for s in statements(document)}
    assert by_sid["ManageStackServices"]["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2"]}
    }
    assert "iam:CreateUser" not in by_sid["ManageStackRoles"]["Action"]
    assert "arn:aws:iam::123456789012:role/sage-*" in by_sid["ManageStackRoles"]["Resource"]
    assert not any(a.startswith("iam:") for a in by_sid["ManageStackServices"]["Action"])


def test_the_preview_role_reads_configuration_but_no_data(prod: StackRecord) -> None:
    preview = role(prod, "preview")
    attachment = next(a for a in prod.of_type("iam/rolePolicyAttachment") if a.refers_to("role") == [preview.urn])
    assert attachment["policyArn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    document = policy(prod, preview)
    (deny,) = [s for s in statements(document) if s["Effect"] == "Deny"]
    assert {"secretsmanager:GetSecretValue", "s3:GetObject", "logs:GetLogEvents"} <= set(deny["Action"])
    assert set(deny["Action"]) == set(PREVIEW_DENIED)
    assert [s for s in statements(document) if s["Effect"] == "Allow"] == []  # no pulumiSecretsKeyArn set


def test_the_role_arns_are_stack_outputs_for_the_github_environments(prod: StackRecord) -> None:
    for key, output in (
        ("deploy", "githubDeployRoleArn"),
        ("infra", "githubInfraRoleArn"),
        ("preview", "githubPreviewRoleArn"),
    ):
        assert prod.output(output) == role(prod, key).state["arn"]


# --- the policy rule ---------------------------------------------------------------------------------

PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"


def github_trust(condition: dict[str, Any] | None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    if condition is not None:
        statement["Condition"] = condition
    return {"assumeRolePolicy": {"Version": "2012-10-17", "Statement": [statement]}}


@pytest.mark.parametrize(
    "condition",
    [
        None,
        {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}},
        {"StringEquals": {f"{ISSUER}:sub": "repo:sage-ai/sage:environment:production"}},
        {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}, "StringLike": {f"{ISSUER}:sub": "repo:sage-ai/*"}},
        {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com", f"{ISSUER}:sub": "repo:sage-ai/sage:*"}},
    ],
)
def test_github_trust_without_audience_and_an_exact_subject_is_rejected(condition: dict[str, Any] | None) -> None:
    (found,) = resource_violations(github_oidc_trust_pinned, "aws:iam/role:Role", github_trust(condition))
    assert "GitHub OIDC" in found


def test_github_trust_pinned_to_audience_and_subject_passes() -> None:
    condition = {
        "StringEquals": {
            f"{ISSUER}:aud": "sts.amazonaws.com",
            f"{ISSUER}:sub": "repo:sage-ai/sage:environment:production",
        }
    }
    assert resource_violations(github_oidc_trust_pinned, "aws:iam/role:Role", github_trust(condition)) == []
