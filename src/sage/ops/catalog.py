"""The backup catalog: names, manifests, which backups count as good, and retention.

A backup is *good* only when both its data object and its manifest exist and agree on
the size. The manifest is written after the data object is complete and checked, so a
dump that failed at any stage never has one: it cannot be listed, restored or counted
towards retention. The manifest carries the object's SHA-256 and the per-table row
counts and Alembic revision read in the same snapshot as the dump.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sage.ops.common import OpsError
from sage.ops.storage import BackupStorage, StoredObject

MANIFEST_SUFFIX = ".manifest.json"
EXTENSIONS = {"plain": ".sql.gz", "custom": ".dump"}
KEY_PATTERN = re.compile(r"^backup_(\d{8}_\d{6})(\.sql\.gz|\.dump)$")
ORPHAN_GRACE = timedelta(days=1)  # a data object still waiting for its manifest is not an orphan


def backup_key(when: datetime, fmt: str) -> str:
    return f"backup_{when.astimezone(UTC):%Y%m%d_%H%M%S}{EXTENSIONS[fmt]}"


def manifest_key(key: str) -> str:
    return key + MANIFEST_SUFFIX


@dataclass
class Manifest:
    key: str
    format: str  # plain (psql) | custom (pg_restore)
    sha256: str
    size: int
    database: str
    server_version: str
    pg_dump_major: int
    alembic_revision: str | None
    row_counts: dict[str, int]
    snapshot: str
    started_at: str
    finished_at: str
    duration_seconds: float
    database_size_bytes: int
    manifest_version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, key: str, data: bytes) -> Manifest:
        try:
            raw = json.loads(data)
            manifest = cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})
            if manifest.key != key or not re.fullmatch(r"[0-9a-f]{64}", manifest.sha256):
                raise ValueError("key or sha256")
            manifest.size = int(manifest.size)
            manifest.row_counts = {str(k): int(v) for k, v in manifest.row_counts.items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            raise OpsError(f"the manifest of {key} is unreadable; treat this backup as bad") from None
        return manifest


@dataclass(frozen=True)
class BackupEntry:
    key: str
    size: int
    modified: datetime


class Catalog:
    def __init__(self, storage: BackupStorage) -> None:
        self.storage = storage

    def _split(self) -> tuple[dict[str, StoredObject], dict[str, StoredObject]]:
        data: dict[str, StoredObject] = {}
        manifests: dict[str, StoredObject] = {}
        for obj in self.storage.list_objects():
            if obj.key.endswith(MANIFEST_SUFFIX):
                manifests[obj.key[: -len(MANIFEST_SUFFIX)]] = obj
            elif KEY_PATTERN.match(obj.key):
                data[obj.key] = obj
        return data, manifests

    def good(self) -> list[BackupEntry]:
        """Good backups, newest first."""
        data, manifests = self._split()
        entries = [BackupEntry(k, o.size, o.modified) for k, o in data.items() if k in manifests]
        return sorted(entries, key=lambda e: e.key, reverse=True)

    def orphans(self, now: datetime) -> list[StoredObject]:
        """Data objects without a manifest (a manifest write that failed), past the grace period."""
        data, manifests = self._split()
        return [o for k, o in data.items() if k not in manifests and o.modified < now - ORPHAN_GRACE]

    def manifest(self, key: str) -> Manifest:
        try:
            raw = self.storage.read_bytes(manifest_key(key))
        except KeyError:
            raise OpsError(f"{key} is not a good backup (no manifest; it may have failed)") from None
        return Manifest.from_bytes(key, raw)

    def resolve(self, ref: str) -> Manifest:
        """'latest' or a key (a full s3://.../key or path is accepted too) -> its manifest."""
        good = self.good()
        if ref == "latest":
            if not good:
                raise OpsError(f"no good backup in {self.storage.url}")
            key = good[0].key
        else:
            key = ref.rstrip("/").rsplit("/", 1)[-1]
            if not KEY_PATTERN.match(key):
                raise OpsError(f"{ref!r} is not a backup name (expected backup_YYYYMMDD_HHMMSS.sql.gz or 'latest')")
            if key not in {e.key for e in good}:
                raise OpsError(f"{key} is not a good backup in {self.storage.url}")
        manifest = self.manifest(key)
        stored = self.storage.size(key)
        if stored != manifest.size:
            raise OpsError(
                f"{key} is {stored} bytes but its manifest says {manifest.size}: the object was altered or truncated"
            )
        return manifest

    def prune(self, keep: int, now: datetime, log: Callable[[str], None]) -> list[str]:
        """Delete good backups beyond the newest `keep`, and stale orphans. Call only after a success."""
        deleted = []
        for entry in self.good()[keep:]:
            # Manifest first: a half-deleted backup must stop counting as good.
            self.storage.delete(manifest_key(entry.key))
            self.storage.delete(entry.key)
            log(f"deleted old backup {entry.key} (keeping the newest {keep})")
            deleted.append(entry.key)
        for orphan in self.orphans(now):
            self.storage.delete(orphan.key)
            log(f"deleted incomplete backup {orphan.key} (it never got a manifest)")
            deleted.append(orphan.key)
        return deleted
