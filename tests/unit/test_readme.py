"""The README is the front door: its configuration table names every variable Sage reads."""

from __future__ import annotations

import re
from pathlib import Path

from sage.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]


def _config_table() -> str:
    text = (ROOT / "README.md").read_text()
    start, end = text.index("<!-- config-table:start -->"), text.index("<!-- config-table:end -->")
    return text[start:end]


def test_every_setting_has_a_row_in_the_readme_configuration_table() -> None:
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", _config_table(), flags=re.MULTILINE))
    missing = sorted(env_name(field) for field in Settings.model_fields if env_name(field) not in rows)
    assert missing == []


def test_readme_gives_exactly_two_setup_commands() -> None:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Set-up: two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["python3 dev.py serve", "python3 dev.py test"]


def test_ci_runs_the_readme_test_command() -> None:
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text().splitlines()
