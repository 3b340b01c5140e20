"""PostgreSQL connection budget: the worst case the deployed processes can open vs what RDS accepts.

The spec's incident ("53300 too many connections" at 98/100) came from connection pools that
nobody had added up. This module adds them up. It is pure Python (no Pulumi import) so the
program, the policy pack and the cost tool share one formula:

    demand   = for every workload: peak tasks x processes per task x (pool_size + max_overflow)
               + extra connections (pg_dump / psql / pg_restore) + headroom (operators, monitoring)
    capacity = LEAST(DBInstanceClassMemory / 9531392, 5000) - superuser_reserved_connections

`peak tasks` is the autoscaling maximum *during a rolling deployment*: ECS may run
`deployment_maximum_percent` of the desired count while old and new tasks overlap.
Workloads that share an `exclusive_group` never run at the same time (the daily backup and
the weekly backup verification are scheduled hours apart), so only the largest one counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# RDS for PostgreSQL's default: max_connections = LEAST({DBInstanceClassMemory/9531392}, 5000).
BYTES_PER_CONNECTION = 9_531_392
MAX_CONNECTIONS_CAP = 5000
# Slots PostgreSQL keeps for superusers (rdsadmin); the app's role cannot use them.
SUPERUSER_RESERVED_CONNECTIONS = 3
# DBInstanceClassMemory is the class's memory less what RDS keeps for the OS and its agents.
# AWS does not publish the figure; 232 MiB reproduces the default max_connections of 87 observed
# on 1 GiB classes (so ~84 usable on db.t3.micro, the "about 85" the issue quotes). After the
# first deployment, compare with `SHOW max_connections;` and adjust if AWS changes it.
RDS_RESERVED_MEMORY_MIB = 232
# Operators' psql sessions, RDS monitoring and a margin for miscounting.
DEFAULT_HEADROOM = 5

# The `sage db` commands that run a PostgreSQL client tool beside their own connections
# (src/sage/ops): `backup` streams pg_dump; `migrate` backs up first (pg_dump) and restores
# on failure (psql); `restore` and `verify-backup` run psql or pg_restore (one connection
# with `--jobs 1`).
PG_TOOL_CONNECTIONS = 1
PG_TOOL_COMMANDS = frozenset({"backup", "migrate", "restore", "verify-backup"})
# Scheduled maintenance: the daily backup and the weekly verification run hours apart.
SCHEDULED_MAINTENANCE = "scheduled-maintenance"
SCHEDULED_MAINTENANCE_COMMANDS = frozenset({"backup", "verify-backup"})


def db_subcommand(command: Sequence[str]) -> str | None:
    """`backup` for `sage db backup ...` (the container command without the `sage` entry point)."""
    words = [str(c) for c in command]
    return words[1] if len(words) >= 2 and words[0] == "db" else None


def tool_connections(command: Sequence[str]) -> int:
    """Connections a command opens through a PostgreSQL client tool, beyond its pool."""
    return PG_TOOL_CONNECTIONS if db_subcommand(command) in PG_TOOL_COMMANDS else 0


# A release: `sage db bootstrap-roles` (once, and for password rotation) runs before the
# migration, by the operator or the deploy, never beside it.
RELEASE = "release"
RELEASE_COMMANDS = frozenset({"migrate", "bootstrap-roles"})


def exclusive_group(command: Sequence[str]) -> str | None:
    """The group of commands this one never runs together with, if any."""
    subcommand = db_subcommand(command)
    if subcommand in SCHEDULED_MAINTENANCE_COMMANDS:
        return SCHEDULED_MAINTENANCE
    return RELEASE if subcommand in RELEASE_COMMANDS else None


# Nominal memory (GiB) of the RDS classes this project may use. Unknown classes fail closed.
RDS_INSTANCE_MEMORY_GIB: dict[str, float] = {
    "db.t3.micro": 1,
    "db.t3.small": 2,
    "db.t3.medium": 4,
    "db.t3.large": 8,
    "db.t4g.micro": 1,
    "db.t4g.small": 2,
    "db.t4g.medium": 4,
    "db.t4g.large": 8,
    "db.m6g.large": 8,
    "db.m6g.xlarge": 16,
    "db.m7g.large": 8,
    "db.r6g.large": 16,
    "db.r6g.xlarge": 32,
    "db.r6g.2xlarge": 64,
    "db.r7g.large": 16,
    "db.r7g.xlarge": 32,
}


class ConnectionBudgetError(ValueError):
    """The configuration could open more PostgreSQL connections than the instance accepts."""


class UnknownInstanceClassError(ValueError):
    """An RDS class whose memory this module does not know (add it to RDS_INSTANCE_MEMORY_GIB)."""


def instance_class_memory_bytes(instance_class: str) -> int:
    """Estimated DBInstanceClassMemory of an RDS class."""
    try:
        gib = RDS_INSTANCE_MEMORY_GIB[instance_class]
    except KeyError:
        known = ", ".join(sorted(RDS_INSTANCE_MEMORY_GIB))
        raise UnknownInstanceClassError(
            f"unknown RDS instance class {instance_class!r}: add its memory to "
            f"sage_infra/budget.py RDS_INSTANCE_MEMORY_GIB (known: {known})"
        ) from None
    return int(gib * 1024 * 1024 * 1024) - RDS_RESERVED_MEMORY_MIB * 1024 * 1024


def max_connections(instance_class: str) -> int:
    """RDS's default max_connections for the class: LEAST(DBInstanceClassMemory/9531392, 5000)."""
    return min(instance_class_memory_bytes(instance_class) // BYTES_PER_CONNECTION, MAX_CONNECTIONS_CAP)


def usable_connections(instance_class: str) -> int:
    """Connections the application's role can actually open."""
    return max_connections(instance_class) - SUPERUSER_RESERVED_CONNECTIONS


@dataclass(frozen=True)
class Workload:
    """One kind of process that talks to PostgreSQL (a service or a one-off task)."""

    name: str
    max_tasks: int
    processes_per_task: int
    pool_size: int
    max_overflow: int
    deployment_maximum_percent: int = 100
    extra_connections_per_task: int = 0
    # Workloads of one group never run at the same time: the largest one counts.
    exclusive_group: str | None = None

    @property
    def peak_tasks(self) -> int:
        return math.ceil(self.max_tasks * self.deployment_maximum_percent / 100)

    @property
    def connections_per_task(self) -> int:
        return self.processes_per_task * (self.pool_size + self.max_overflow) + self.extra_connections_per_task

    @property
    def connections(self) -> int:
        return self.peak_tasks * self.connections_per_task

    def describe(self) -> str:
        surge = f" (max {self.max_tasks} at {self.deployment_maximum_percent}% during deploys)"
        tasks = f"{self.peak_tasks} task(s)" + (surge if self.peak_tasks != self.max_tasks else "")
        per = f"{self.processes_per_task} x ({self.pool_size} + {self.max_overflow})"
        if self.extra_connections_per_task:
            per += f" + {self.extra_connections_per_task}"
        return f"{self.name}: {tasks} x {per} = {self.connections}"


@dataclass(frozen=True)
class BudgetReport:
    instance_class: str
    max_connections: int
    usable: int
    workloads: tuple[Workload, ...]
    headroom: int

    def _groups(self) -> dict[str, list[Workload]]:
        groups: dict[str, list[Workload]] = {}
        for w in self.workloads:
            if w.exclusive_group is not None:
                groups.setdefault(w.exclusive_group, []).append(w)
        return groups

    @property
    def demand(self) -> int:
        alone = sum(w.connections for w in self.workloads if w.exclusive_group is None)
        grouped = sum(max(w.connections for w in members) for members in self._groups().values())
        return alone + grouped + self.headroom

    @property
    def fits(self) -> bool:
        return self.demand <= self.usable

    def explain(self) -> str:
        lines = [w.describe() for w in self.workloads if w.exclusive_group is None]
        for members in self._groups().values():
            if len(members) == 1:
                lines.append(members[0].describe())
            else:
                largest = max(w.connections for w in members)
                lines.append(f"one of ({', '.join(w.describe() for w in members)}) at a time = {largest}")
        lines.append(f"headroom: {self.headroom}")
        return "; ".join(lines)

    def message(self) -> str:
        verdict = "fits" if self.fits else "exceeds"
        return (
            f"PostgreSQL connection budget {verdict}: worst case {self.demand} connections vs "
            f"{self.usable} usable on {self.instance_class} (max_connections {self.max_connections} "
            f"- {SUPERUSER_RESERVED_CONNECTIONS} reserved) [{self.explain()}]"
        )


def evaluate(instance_class: str, workloads: Iterable[Workload], headroom: int = DEFAULT_HEADROOM) -> BudgetReport:
    return BudgetReport(
        instance_class=instance_class,
        max_connections=max_connections(instance_class),
        usable=usable_connections(instance_class),
        workloads=tuple(workloads),
        headroom=headroom,
    )


def check(instance_class: str, workloads: Iterable[Workload], headroom: int = DEFAULT_HEADROOM) -> BudgetReport:
    """The report, or ConnectionBudgetError whose message names both numbers."""
    report = evaluate(instance_class, workloads, headroom)
    if not report.fits:
        raise ConnectionBudgetError(
            report.message() + ". Lower SAGE_DB_POOL_SIZE / SAGE_DB_MAX_OVERFLOW, the API's maximum task "
            "count or deployment maximum percent, or choose a larger dbInstanceClass."
        )
    return report
