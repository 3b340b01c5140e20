"""Read docker-compose.yml the way `docker compose config` would, without Docker.

Covers what this repository's compose file uses: YAML merge keys, `${VAR}`,
`${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`, env_file entries (optional
ones included) and `environment` overriding them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.delivery.tools import REPO, load_yaml

COMPOSE_FILE = REPO / "docker-compose.yml"
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def interpolate(value: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = variables.get(name)
        unset_or_empty = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if (current is None if op == "-" else unset_or_empty) else str(current)
        if op in (":?", "?"):
            if current is None if op == "?" else unset_or_empty:
                raise InterpolationError(f"{name}: {arg or 'required'}")
            return str(current)
        if op in (":+", "+"):
            return "" if (current is None if op == "+" else unset_or_empty) else arg
        return current or ""

    return _VARIABLE.sub(replace, value)


def resolve(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [resolve(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, variables) for key, value in node.items()}
    return node


def parse_dotenv(text: str) -> dict[str, str]:
    """Compose's .env format: KEY=VALUE lines, `#` comments, optional quotes."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            continue
        value = value.strip()
        if value[:1] in {"'", '"'} and value.endswith(value[0]) and len(value) >= 2:
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.strip()] = value
    return values


def load(dotenv: dict[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose model with variables from a project `.env` (None: no .env file)."""
    raw = load_yaml(path)
    return dict(resolve(raw, dict(dotenv or {})))


def service_environment(model: dict[str, Any], service: str, files: dict[str, str | None]) -> dict[str, str]:
    """The container's environment: env_file entries, then `environment`.

    `files` maps an env_file path to its text (None: the file does not exist)."""
    definition = model["services"][service]
    environment: dict[str, str] = {}
    entries = definition.get("env_file", [])
    for entry in [entries] if isinstance(entries, str) else entries:
        path, required = (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        text = files.get(path)
        if text is None:
            assert not required, f"{service}: env_file {path} is required but absent"
            continue
        environment.update(parse_dotenv(text))
    declared = definition.get("environment", {})
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) for item in declared)
    environment.update({key: "" if value is None else str(value) for key, value in declared.items()})
    return environment


_PORT = re.compile(
    r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]+\]):)?(?:(?P<host>\d+):)?(?P<container>\d+)(?:/(?P<proto>tcp|udp))?$"
)


def parse_port(spec: str) -> tuple[str | None, int | None, int]:
    match = _PORT.match(spec)
    if not match:
        raise ValueError(f"not a port mapping: {spec!r}")
    host = int(match["host"]) if match["host"] else None
    container = int(match["container"])
    for number in (host, container):
        if number is not None and not 1 <= number <= 65535:
            raise ValueError(f"port out of range in {spec!r}")
    return match["ip"], host, container
