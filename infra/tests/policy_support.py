"""Run the CrossGuard policies against recorded resources or hand-made examples, as the
analyzer would: resource policies see inputs, stack policies see outputs and dependencies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from stack_record import Resource


def _options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def resource_violations(policy: ResourceValidationPolicy, resource_type: str, props: Mapping[str, Any]) -> list[str]:
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    args = ResourceValidationArgs(
        resource_type=resource_type,
        props=props,
        urn=f"urn:pulumi:test::sage-infra::{resource_type}::example",
        name="example",
        opts=_options(),
        provider=None,
    )
    result = policy.validate(args, report)
    assert result is None, "policies are synchronous"
    return found


class Example:
    """A hand-made resource for stack-policy examples; `deps` maps properties to other examples."""

    def __init__(self, name: str, resource_type: str, props: Mapping[str, Any], **deps: list[Example]) -> None:
        self.name = name
        self.resource_type = resource_type
        self.props = dict(props)
        self.deps = deps

    @property
    def urn(self) -> str:
        return f"urn:pulumi:test::sage-infra::{self.resource_type}::{self.name}"


def _policy_resources(items: list[tuple[str, str, str, dict[str, Any], dict[str, list[str]]]]) -> list[PolicyResource]:
    """(urn, name, type, props, property->urns) into linked PolicyResources."""
    built = {
        urn: PolicyResource(
            resource_type=typ,
            props=props,
            urn=urn,
            name=name,
            opts=_options(),
            provider=None,
            parent=None,
            dependencies=[],
            property_dependencies={},
        )
        for urn, name, typ, props, _ in items
    }
    for urn, _, _, _, deps in items:
        resource = built[urn]
        resource.property_dependencies = {prop: [built[u] for u in urns if u in built] for prop, urns in deps.items()}
        resource.dependencies = [d for ds in resource.property_dependencies.values() for d in ds]
    return list(built.values())


def stack_violations(policy: StackValidationPolicy, resources: Iterable[Example | Resource]) -> list[str]:
    items: list[tuple[str, str, str, dict[str, Any], dict[str, list[str]]]] = []
    for r in resources:
        if isinstance(r, Example):
            items.append((r.urn, r.name, r.resource_type, r.props, {k: [d.urn for d in v] for k, v in r.deps.items()}))
        elif r.custom:
            items.append((r.urn, r.name, r.type, r.state, r.property_dependencies))
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    result = policy.validate(StackValidationArgs(_policy_resources(items)), report)
    assert result is None, "policies are synchronous"
    return found
