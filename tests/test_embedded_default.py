"""`sage serve` with nothing configured: a real embedded PostgreSQL that keeps data across
restarts and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

SAGE = str(Path(sys.executable).parent / "sage")


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VALKEY_URL", "ANTHROPIC_API_KEY"}}
    env.update({"SAGE_DATA_DIR": str(data_dir), "SAGE_PORT": str(port), "SAGE_LOG_JSON": "true"})
    return env


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [SAGE, "serve"], env=_env(data_dir, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"sage serve exited early:\n{process.stdout.read().decode() if process.stdout else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("sage serve did not become healthy in 90 s")


def _stop(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    return process.returncode, out.decode()


def _postgres_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sage-data"
    yield path
    if _postgres_running(path / "pgdata"):  # never leak a server, even when the test failed
        subprocess.run(["pkill", "-f", str(path / "pgdata")], check=False)


def test_embedded_default_persists_a_user_across_restarts_and_stops_postgres(data_dir: Path) -> None:
    port = free_port()
    credentials = {"email": "persist@example.com", "password": "password123"}

    first = _start(data_dir, port)
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
        assert ready.status_code == 200
        created = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/register", json=credentials, timeout=10)
        assert created.status_code == 201
    finally:
        code, output = _stop(first)
    assert code == 0, output
    assert "Traceback" not in output
    assert not _postgres_running(data_dir / "pgdata"), "embedded PostgreSQL still running after SIGTERM"

    second = _start(data_dir, port)
    try:
        login = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/login", json=credentials, timeout=10)
        assert login.status_code == 200
    finally:
        code, _ = _stop(second)
    assert code == 0
    assert not _postgres_running(data_dir / "pgdata")
