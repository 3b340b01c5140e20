"""The growth-phase sizing table (Infrastructure Spec 13.1) and the fixed task sizes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Fargate's valid (cpu units -> memory MiB) combinations.
FARGATE_MEMORY = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}


class Phase(StrEnum):
    MVP = "mvp"
    GROWTH = "growth"
    SCALE = "scale"


@dataclass(frozen=True)
class PhaseSizing:
    """One row of spec 13.1, plus the deployment settings the connection budget depends on."""

    mau: str
    api_min_tasks: int
    api_max_tasks: int
    api_cpu: int
    api_memory: int
    db_instance_class: str
    db_read_replicas: int
    db_multi_az: bool
    cache_node_type: str
    deployment_maximum_percent: int
    deployment_minimum_healthy_percent: int


PHASES: dict[Phase, PhaseSizing] = {
    # MVP keeps deployments inside the task ceiling (100 %): 10 tasks x 7 connections already
    # use most of db.t3.micro, so a 200 % surge during a deploy at peak would reproduce the
    # spec's "too many connections" incident.
    Phase.MVP: PhaseSizing("5,000", 2, 10, 512, 1024, "db.t3.micro", 0, False, "cache.t3.micro", 100, 50),
    Phase.GROWTH: PhaseSizing("50,000", 5, 10, 512, 1024, "db.t3.small", 1, True, "cache.t3.small", 200, 100),
    Phase.SCALE: PhaseSizing("100,000+", 10, 20, 512, 1024, "db.r6g.large", 2, True, "cache.r6g.large", 200, 100),
}


# The `lean` profile of the MVP (config `profile: lean`, cost `--profile lean`): what it takes to
# stay within the spec's $115/month. Graviton classes (t4g) and 0.25 vCPU / 1 GB API tasks
# (ARM64 Fargate), everything else as the MVP row; infra/README.md lists what it gives up.
LEAN_MVP = PhaseSizing("5,000", 2, 10, 256, 1024, "db.t4g.micro", 0, False, "cache.t4g.micro", 100, 50)
LEAN_CACHE_NODES = 1


@dataclass(frozen=True)
class TaskSize:
    cpu: int
    memory: int
    db_pool_size: int
    db_max_overflow: int


# Small pools for the single-purpose processes: the ingestor writes candles from one loop;
# migrations, backups and backup verification run one statement stream at a time (plus the
# PostgreSQL client tool they drive, counted by budget.tool_connections).
INGESTOR_SIZE = TaskSize(cpu=256, memory=512, db_pool_size=2, db_max_overflow=1)
OPS_SIZE = TaskSize(cpu=256, memory=512, db_pool_size=1, db_max_overflow=1)
