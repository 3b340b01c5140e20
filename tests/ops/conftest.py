"""Fixtures for the database-operations tests: an S3 server (moto, server mode) on
127.0.0.1, seeded databases, content fingerprints, and helpers to run `sage` as a
subprocess the way an ECS one-off task runs it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest

from sage.observability.metrics import Metrics
from sage.ops.common import StepLog
from sage.ops.context import OpsContext, ops_context
from sage.ops.pgtools import PgTools, database_name, with_database
from sage.settings import Settings
from sage.store.embedded_pg import embedded_bin_dir
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BROKEN_SCRIPTS = HERE / "scripts_broken"
GATED_SCRIPTS = HERE / "scripts_gated"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


# --- S3 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass
class S3Target:
    endpoint: str
    bucket: str
    prefix: str
    client: Any

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def names(self) -> list[str]:
        response = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def incomplete_uploads(self) -> list[str]:
        response = self.client.list_multipart_uploads(Bucket=self.bucket)
        return [u["Key"] for u in response.get("Uploads", [])]


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """A fresh bucket; boto3 in this process (and subprocesses given `aws_env`) talks to moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    bucket = f"sage-backups-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return S3Target(s3_endpoint, bucket, "prod/db", client)


def aws_env(s3: S3Target) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": s3.endpoint, **AWS_ENV}


# --- databases -------------------------------------------------------------------------------------


@pytest.fixture
async def ops_database(
    template_database: str, fresh_database: Callable[..., Any], pg_server_url: str
) -> AsyncIterator[str]:
    """A migrated database of this test's own; databases a restore derives from it
    (<name>_pre_restore_..., <name>_failed_migration_...) are dropped afterwards too."""
    url = str(await fresh_database(template_database))
    yield url
    await drop_derived(pg_server_url, database_name(url))


@pytest.fixture
async def empty_database(fresh_database: Callable[..., Any], pg_server_url: str) -> AsyncIterator[str]:
    url = str(await fresh_database())
    yield url
    await drop_derived(pg_server_url, database_name(url))


async def drop_derived(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        rows = await admin.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1) OR starts_with(datname, 'sage_verify_')",
            name + "_",
        )
        for row in rows:
            await admin.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await admin.close()


async def database_names(server_url: str) -> set[str]:
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        return {r["datname"] for r in await admin.fetch("SELECT datname FROM pg_database")}
    finally:
        await admin.close()


async def seed(url: str, *, users: int = 200, blob_bytes: int = 0) -> None:
    """Varied content: the app's users table plus a table of awkward types and a sequence."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO users (id, email, password_hash, display_name)
            SELECT gen_random_uuid(), 'user' || g || '@example.com', 'argon2$' || md5(g::text),
                   CASE WHEN g % 3 = 0 THEN NULL ELSE '사용자 ' || g || ' ✓' END
            FROM generate_series(1, $1) g
            """,
            users,
        )
        await conn.execute(
            """
            CREATE TABLE ops_samples (
                id bigserial PRIMARY KEY,
                doc jsonb,
                price numeric(30, 10),
                tags text[],
                raw bytea,
                at timestamptz,
                note text
            )
            """
        )
        await conn.execute(
            """
            INSERT INTO ops_samples (doc, price, tags, raw, at, note)
            SELECT jsonb_build_object('n', g, 'nested', jsonb_build_array(g, 'x', NULL)),
                   g * 1234.5678901234, ARRAY['a' || g, E'tab\\there', NULL],
                   decode(md5(g::text), 'hex'), '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 minute',
                   CASE WHEN g % 5 = 0 THEN NULL ELSE E'line1\\nline2 \\\\ "quoted" ''single''' END
            FROM generate_series(1, 500) g
            """
        )
        await conn.execute("DELETE FROM ops_samples WHERE id % 7 = 0")  # gaps, and a sequence ahead of max(id)
        if blob_bytes:
            await conn.execute("CREATE TABLE ops_blobs (id int PRIMARY KEY, payload bytea)")
            chunk = 1024 * 1024
            rows = [(i, os.urandom(min(chunk, blob_bytes - i * chunk))) for i in range(-(-blob_bytes // chunk))]
            await conn.executemany("INSERT INTO ops_blobs VALUES ($1, $2)", rows)
    finally:
        await conn.close()


async def fingerprint(url: str, *, sequences: bool = True) -> dict[str, tuple[int, str]]:
    """Per table: (row count, md5 of every row in a stable order); plus sequence positions."""
    conn = await asyncpg.connect(url)
    try:
        out: dict[str, tuple[int, str]] = {}
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        )
        for row in tables:
            name = f'"{row["schemaname"]}"."{row["tablename"]}"'
            count, digest = await conn.fetchrow(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {name} t"
            )
            out[f"{row['schemaname']}.{row['tablename']}"] = (count, digest)
        for row in (
            await conn.fetch("SELECT schemaname, sequencename, last_value FROM pg_sequences") if sequences else []
        ):
            out[f"sequence {row['schemaname']}.{row['sequencename']}"] = (int(row["last_value"] or 0), "")
        return out
    finally:
        await conn.close()


def server_major_of(url: str) -> int:
    """The major version of the server at `url` (asked with the wheel's psql)."""
    psql = embedded_bin_dir() / "psql"  # type: ignore[operator]
    out = subprocess.run(
        [str(psql), "-Atc", "SHOW server_version_num", f"--dbname={url}"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.strip()) // 10000


def schema_dump(url: str) -> str:
    """The schema as pg_dump sees it (minus the per-run \\restrict key), with the pg_dump the
    ops code would pick for that server (pg_dump 18 against a PostgreSQL 15 server printed
    per-column `pg_attver` options that differ after a restore of the same schema)."""
    pg_dump = PgTools().for_server("pg_dump", server_major_of(url)).path
    out = subprocess.run(
        [pg_dump, "--schema-only", "--no-owner", f"--dbname={url}"], capture_output=True, text=True, check=True
    ).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


# --- contexts and the CLI ------------------------------------------------------------------------


@pytest.fixture
def ops_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Callable[..., Settings]:
    def make(database_url: str, backup_url: str | None = None, **overrides: Any) -> Settings:
        return make_settings(
            database_url=database_url,
            backup_url=backup_url or (tmp_path / "backups").as_uri(),
            **overrides,
        )

    return make


def make_ctx(settings: Settings, metrics: Metrics | None = None) -> OpsContext:
    assert settings.database_url is not None
    return ops_context(settings, settings.database_url, log=StepLog(quiet=True), metrics=metrics or Metrics())


def run_sage(
    *args: str, env: dict[str, str], scripts: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`sage ...` as a separate process, configured only through its environment."""
    argv = (
        [sys.executable, "-m", "tests.ops.cli_with_scripts", str(scripts), *args]
        if scripts
        else [sys.executable, "-m", "sage.cli", *args]
    )
    return subprocess.run(argv, env=cli_env(env), cwd=REPO, capture_output=True, text=True, timeout=timeout)


def spawn_sage(*args: str, env: dict[str, str], scripts: Path | None = None) -> subprocess.Popen[str]:
    argv = (
        [sys.executable, "-m", "tests.ops.cli_with_scripts", str(scripts), *args]
        if scripts
        else [sys.executable, "-m", "sage.cli", *args]
    )
    return subprocess.Popen(argv, env=cli_env(env), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cli_env(extra: dict[str, str]) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "XDG_RUNTIME_DIR": "/tmp",
            "SAGE_ENV": "development",
            "SAGE_MARKET_SOURCE": "off",
            "SAGE_METRICS_EMF": "false",
        }
    )
    env.update(extra)
    return env
