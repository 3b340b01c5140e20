"""The PostgreSQL connection budget (the spec's "53300 too many connections" incident)."""

from __future__ import annotations

import runpy
from typing import Any

import pulumi_policy
import pytest
from sage_infra import budget
from sage_infra.budget import ConnectionBudgetError, Workload
from sage_infra.config import from_values
from sage_infra.sizing import PHASES, Phase
from scenarios import REQUIRED


def config(**overrides: str) -> Any:
    values = {**REQUIRED, "phase": "mvp", "appDomain": "app.example.com", "apiDomain": "api.example.com", **overrides}
    return from_values(values, "prod")


def test_max_connections_follows_rds_formula() -> None:
    # LEAST(DBInstanceClassMemory / 9531392, 5000) with DBInstanceClassMemory below nominal memory.
    assert budget.max_connections("db.t3.micro") == 87
    assert budget.usable_connections("db.t3.micro") == 84
    assert budget.max_connections("db.t3.small") == 199
    assert budget.max_connections("db.r6g.large") == 1776
    assert budget.max_connections("db.r6g.2xlarge") == 5000, "capped"


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_fits_its_database(phase: Phase) -> None:
    report = budget.check(PHASES[phase].db_instance_class, config(phase=phase.value).workloads())
    assert report.fits


def test_mvp_worst_case_is_counted_per_process() -> None:
    report = budget.check("db.t3.micro", config().workloads())
    # 10 API tasks x 1 worker x (5 + 2), ingestor 2 + 1, migration 1 + 1 + pg_dump, one of
    # backup (1 + 1 + pg_dump) / verify-backup (1 + 1 + psql), headroom.
    assert report.demand == 70 + 3 + 3 + 3 + 5 == 84
    assert report.usable == 84


def test_the_migration_counts_the_pg_dump_of_its_pre_migration_backup() -> None:
    (migration,) = [w for w in config().workloads() if w.name == "migration"]
    assert migration.connections == 1 * (1 + 1) + 1


def test_backup_and_its_verification_never_run_together_so_the_larger_counts() -> None:
    workloads = {w.name: w for w in config().workloads()}
    backup, verify = workloads["backup"], workloads["verify-backup"]
    assert backup.exclusive_group == verify.exclusive_group is not None
    others = [w for w in workloads.values() if w.exclusive_group is None]
    report = budget.evaluate("db.t3.micro", [*others, backup, verify])
    alone = budget.evaluate("db.t3.micro", [*others, backup])
    assert report.demand == alone.demand
    assert "one of (backup: " in report.message() and "verify-backup: " in report.message()


def test_a_workload_outside_any_group_always_adds_up() -> None:
    pair = [Workload("a", 1, 1, 2, 0), Workload("b", 1, 1, 3, 0)]
    assert budget.evaluate("db.t3.micro", pair, headroom=0).demand == 5
    grouped = [Workload("a", 1, 1, 2, 0, exclusive_group="g"), Workload("b", 1, 1, 3, 0, exclusive_group="g")]
    assert budget.evaluate("db.t3.micro", grouped, headroom=0).demand == 3


@pytest.mark.parametrize(
    ("command", "tool", "group"),
    [
        (["db", "backup"], 1, budget.SCHEDULED_MAINTENANCE),
        (["db", "verify-backup", "latest", "--jobs", "1"], 1, budget.SCHEDULED_MAINTENANCE),
        (["db", "migrate"], 1, budget.RELEASE),
        (["db", "bootstrap-roles"], 0, budget.RELEASE),
        (["db", "restore", "latest"], 1, None),
        (["serve"], 0, None),
        (["ingest"], 0, None),
        (["db", "current"], 0, None),
    ],
)
def test_commands_that_drive_a_postgresql_tool_count_its_connection(
    command: list[str], tool: int, group: str | None
) -> None:
    assert budget.tool_connections(command) == tool
    assert budget.exclusive_group(command) == group


def test_too_many_api_tasks_fail_with_both_numbers() -> None:
    with pytest.raises(ConnectionBudgetError) as caught:
        budget.check("db.t3.micro", config(apiMaxTasks="20").workloads())
    assert "worst case 154 connections vs 84 usable on db.t3.micro" in str(caught.value)


def test_bigger_pools_fail() -> None:
    with pytest.raises(ConnectionBudgetError, match=r"worst case 154 connections vs 84 usable"):
        budget.check("db.t3.micro", config(dbPoolSize="10", dbMaxOverflow="4").workloads())


def test_more_workers_per_task_fail() -> None:
    with pytest.raises(ConnectionBudgetError):
        budget.check("db.t3.micro", config(workers="2").workloads())


def test_a_deployment_surge_counts_against_the_budget() -> None:
    surge = config(deploymentMaximumPercent="200", deploymentMinimumHealthyPercent="100")
    with pytest.raises(ConnectionBudgetError, match="max 10 at 200% during deploys"):
        budget.check("db.t3.micro", surge.workloads())


def test_the_spec_incident_cannot_be_deployed() -> None:
    # The incident: ten tasks whose per-task pools were never added up reached 98 of 100
    # connections. Any per-task pool above 7 at ten tasks exhausts db.t3.micro.
    incident = [Workload("api", max_tasks=10, processes_per_task=1, pool_size=9, max_overflow=0)]
    with pytest.raises(ConnectionBudgetError, match=r"worst case 95 connections vs 84 usable"):
        budget.check("db.t3.micro", incident)


def test_unknown_instance_classes_fail_closed() -> None:
    with pytest.raises(budget.UnknownInstanceClassError, match=r"db\.x9\.huge"):
        budget.max_connections("db.x9.huge")


def test_policy_pack_entry_point_packs_every_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    packed: dict[str, Any] = {}

    class RecordingPack:
        def __init__(self, **kwargs: Any) -> None:
            packed.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", RecordingPack)
    runpy.run_path(str(budget.__file__).replace("sage_infra/budget.py", "policy/__main__.py"), run_name="__main__")
    import sage_policies

    assert packed["name"] == "sage-mandatory"
    assert packed["policies"] == list(sage_policies.ALL_POLICIES)
    assert packed["enforcement_level"] is pulumi_policy.EnforcementLevel.MANDATORY
