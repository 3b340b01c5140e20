"""Everything one ops command works with, built once from Settings."""

from __future__ import annotations

from dataclasses import dataclass

from sage.observability.metrics import Metrics, default_metrics
from sage.ops.common import StepLog
from sage.ops.pgtools import PgTools
from sage.ops.storage import BackupStorage, open_storage
from sage.settings import Settings
from sage.store.db import libpq_url


@dataclass
class OpsContext:
    settings: Settings
    database_url: str  # libpq form
    storage: BackupStorage
    tools: PgTools
    log: StepLog
    metrics: Metrics

    @property
    def connect_timeout(self) -> float:
        return self.settings.db_connect_timeout_seconds


def ops_context(
    settings: Settings,
    database_url: str,
    *,
    log: StepLog | None = None,
    metrics: Metrics | None = None,
    storage: BackupStorage | None = None,
) -> OpsContext:
    assert settings.backup_url is not None  # filled by Settings' validator
    return OpsContext(
        settings=settings,
        database_url=libpq_url(database_url),
        storage=storage or open_storage(settings.backup_url),
        tools=PgTools(settings.pg_bin_dir),
        log=log or StepLog(),
        metrics=metrics or default_metrics(),
    )
