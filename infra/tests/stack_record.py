"""Read access to what one run of the Pulumi program declared (see pulumi_harness.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    secret_paths: tuple[str, ...]
    protect: bool
    ignore_changes: tuple[str, ...]
    property_dependencies: dict[str, list[str]]
    custom: bool
    parent: str

    def __getitem__(self, key: str) -> Any:
        return self.inputs[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.inputs.get(key, default)

    def json(self, key: str) -> Any:
        """An input that holds a JSON document (IAM policies, container definitions)."""
        return json.loads(self.inputs[key])

    def refers_to(self, prop: str) -> list[str]:
        return self.property_dependencies.get(prop, [])


class StackRecord:
    def __init__(self, scenario: str, result: dict[str, Any]) -> None:
        self.scenario = scenario
        self.error: dict[str, str] | None = result["error"]
        self.outputs: dict[str, dict[str, Any]] = result["outputs"]
        self.dry_run: bool = result["dry_run"]
        self.resources = [
            Resource(
                type=r["type"],
                name=r["name"],
                urn=r["urn"],
                inputs=r["inputs"],
                state=r["state"],
                secret_paths=tuple(r["secret_paths"]),
                protect=r["protect"],
                ignore_changes=tuple(r["ignore_changes"]),
                property_dependencies=r.get("property_dependencies", {}),
                custom=r["custom"],
                parent=r["parent"],
            )
            for r in result["resources"]
        ]
        self.by_urn = {r.urn: r for r in self.resources}

    def ok(self) -> StackRecord:
        if self.error is not None:
            raise AssertionError(f"{self.scenario} failed: {self.error['traceback']}")
        return self

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def of_type(self, token: str) -> list[Resource]:
        """Resources of a type, by its short name (`rds/instance`) or full token."""
        return [r for r in self.resources if r.type == token or r.type.split(":")[1] == token]

    def one(self, token: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(token) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {token} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def resolve(self, urns: list[str]) -> list[Resource]:
        return [self.by_urn[u] for u in urns]

    def output(self, key: str) -> Any:
        return self.outputs[key]["value"]

    @property
    def prefix(self) -> str:
        """The stack's name prefix (`sage`, `sage-dev`), read from the ECS cluster's name."""
        name: str = self.one("ecs/cluster")["name"]
        return name.removesuffix("-cluster")

    def task_definition(self, family_suffix: str) -> Resource:
        """The task definition of family `<prefix>-<suffix>` exactly (`backup` is not `verify-backup`)."""
        family = f"{self.prefix}-{family_suffix}"
        found = [r for r in self.of_type("ecs/taskDefinition") if r["family"] == family]
        assert len(found) == 1, f"expected one task definition {family}, found {[r['family'] for r in found]}"
        return found[0]

    def containers(self, family_suffix: str) -> list[dict[str, Any]]:
        containers: list[dict[str, Any]] = self.task_definition(family_suffix).json("containerDefinitions")
        return containers

    def container(self, family_suffix: str) -> dict[str, Any]:
        containers = self.containers(family_suffix)
        assert len(containers) == 1
        return containers[0]


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def secrets(container: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["valueFrom"] for s in container.get("secrets", [])}


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    raw = document["Statement"]
    return raw if isinstance(raw, list) else [raw]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
