"""Stack outputs, secret hygiene across the whole program, and the shape of the program."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi.runtime.rpc import UNKNOWN
from sage_infra.constants import STACK_SECRETS
from scenarios import SECRETS
from stack_record import StackRecord

REQUIRED_OUTPUTS = (
    "albDnsName",
    "cloudfrontDomain",
    "rdsEndpoint",
    "valkeyEndpoint",
    "ecrRepositoryUrl",
    "backupBucket",
)


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def test_the_issue_outputs_exist_and_are_not_secret(prod: StackRecord) -> None:
    for key in REQUIRED_OUTPUTS:
        assert prod.outputs[key]["secret"] is False, key
    assert prod.output("albDnsName") == "sage-alb-1234567890.us-west-2.elb.amazonaws.com"
    assert prod.output("cloudfrontDomain") == "d111111abcdef8.cloudfront.net"
    assert prod.output("rdsEndpoint") == "sage-postgres.c9akciq32.us-west-2.rds.amazonaws.com:5432"
    assert prod.output("valkeyEndpoint") == "master.sage-valkey.abc123.usw2.cache.amazonaws.com"
    assert prod.output("ecrRepositoryUrl") == "123456789012.dkr.ecr.us-west-2.amazonaws.com/sage-backend"
    assert prod.output("backupBucket").startswith("sage-backups-")


def test_outputs_report_the_connection_budget(prod: StackRecord) -> None:
    assert "worst case 84 connections vs 84 usable on db.t3.micro" in prod.output("connectionBudget")


def test_secret_values_only_travel_as_pulumi_secrets(deployable: list[StackRecord]) -> None:
    sentinels = [v for v in SECRETS.values()] + ["SENTRY-SENTINEL"]
    for stack in deployable:
        for resource in stack:
            for path, text in strings(resource.inputs):
                if any(s in text for s in sentinels):
                    assert any(path == p or path.startswith((f"{p}.", f"{p}[")) for p in resource.secret_paths), (
                        stack.scenario,
                        resource.name,
                        path,
                    )
        for key, output in stack.outputs.items():
            assert not any(s in str(output["value"]) for s in sentinels), key


def test_every_secret_input_is_marked_secret(prod: StackRecord) -> None:
    marked = {(r.name, p) for r in prod for p in r.secret_paths}
    assert ("database-primary", "password") in marked
    assert ("cache-valkey", "authToken") in marked
    versions = prod.of_type("secretsmanager/secretVersion")
    assert len(versions) == len(STACK_SECRETS)
    assert all(v.secret_paths == ("secretString",) for v in versions)


def test_the_run_resolved_every_value(deployable: list[StackRecord]) -> None:
    """Guards against vacuous assertions: an update, not a preview, and nothing left unknown."""
    for stack in deployable:
        assert stack.dry_run is False
        assert len(stack.resources) > 100
        for resource in stack:
            assert not [p for p, text in strings(resource.inputs) if text == UNKNOWN], resource.name


def test_every_resource_belongs_to_a_component(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        components = {r.urn for r in stack if r.type.startswith("sage:infra:")}
        assert len(components) >= 11
        for resource in stack:
            if resource.custom:
                assert resource.parent in components, resource.name


def test_tagged_resources_name_project_and_environment(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        environment = "prod" if stack.scenario.startswith("prod") else "dev"
        for resource in stack:
            tags = resource.get("tags")
            if tags is not None:
                assert tags["Project"] == "sage" and tags["Environment"] == environment, resource.name


def test_secret_names_match_the_list_the_cost_tool_prices(prod: StackRecord, dev: StackRecord) -> None:
    from sage_infra.constants import OPTIONAL_SECRETS, STACK_SECRETS

    assert sorted(s["name"] for s in prod.of_type("secretsmanager/secret")) == sorted(
        f"sage/{n}" for n in STACK_SECRETS
    )
    assert sorted(s["name"] for s in dev.of_type("secretsmanager/secret")) == sorted(
        f"sage-dev/{n}" for n in (*STACK_SECRETS, *OPTIONAL_SECRETS)
    )
