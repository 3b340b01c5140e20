"""Fixtures for the infra tests: the Pulumi program run once per scenario, offline.

Each scenario runs `infra/__main__.py` under Pulumi's unit-test mocks in its own interpreter
(pulumi_harness.py), because the mock runtime is process-global. The runs happen once per
test session, a few at a time, and every test reads the recorded resources.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
INFRA = TESTS.parent
for path in (INFRA, INFRA / "policy", TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from scenarios import HARNESS, scenarios  # noqa: E402
from stack_record import StackRecord  # noqa: E402


def run_scenario(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(HARNESS)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=INFRA,
        timeout=240,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"harness failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="session")
def stack_runs() -> dict[str, StackRecord]:
    specs = scenarios()
    # Two cores: two interpreters at a time keeps the whole run short without starving others.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(specs, pool.map(run_scenario, specs.values()), strict=True))
    return {name: StackRecord(name, result) for name, result in results.items()}


@pytest.fixture(scope="session")
def prod(stack_runs: dict[str, StackRecord]) -> StackRecord:
    return stack_runs["prod-mvp"].ok()


@pytest.fixture(scope="session")
def growth(stack_runs: dict[str, StackRecord]) -> StackRecord:
    return stack_runs["prod-growth"].ok()


@pytest.fixture(scope="session")
def scale(stack_runs: dict[str, StackRecord]) -> StackRecord:
    return stack_runs["prod-scale"].ok()


@pytest.fixture(scope="session")
def lean(stack_runs: dict[str, StackRecord]) -> StackRecord:
    return stack_runs["prod-lean"].ok()


@pytest.fixture(scope="session")
def dev(stack_runs: dict[str, StackRecord]) -> StackRecord:
    return stack_runs["dev"].ok()


@pytest.fixture(scope="session")
def deployable(stack_runs: dict[str, StackRecord]) -> list[StackRecord]:
    """Every scenario that is supposed to deploy."""
    return [stack_runs[name].ok() for name in ("prod-mvp", "prod-growth", "prod-scale", "dev")]
