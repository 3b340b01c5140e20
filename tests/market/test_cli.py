"""`sage ingest`: configuration errors are one line and exit 2; a real run ingests and
stops cleanly on SIGTERM, handing its leases over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.market.fakes import eventually


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith("SAGE_") and k not in ("VALKEY_URL", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "sage.cli", "ingest", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAGE_MARKET_SOURCE": "off"}, "nothing to ingest"),
        ({"SAGE_MARKET_SOURCE": "live"}, "needs VALKEY_URL"),
        ({"SAGE_MARKET_SOURCE": "live", "VALKEY_URL": "valkey://127.0.0.1:1/0"}, "needs DATABASE_URL"),
        ({"SAGE_MARKET_SOURCE": "sideways"}, "SAGE_MARKET_SOURCE"),
    ],
)
def test_ingest_refuses_an_unusable_configuration_in_one_line(env, message, tmp_path):
    result = run_cli({"SAGE_DATA_DIR": str(tmp_path), **env})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_ingest_runs_as_its_own_process_and_stops_cleanly(database_url, valkey_url, cache, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("SAGE_")}
    env = {
        **base,
        "DATABASE_URL": database_url,
        "VALKEY_URL": valkey_url,
        "SAGE_MARKET_SOURCE": "replay",
        "SAGE_REPLAY_SPEED": "20",
        "SAGE_DATA_DIR": str(tmp_path),
        "SAGE_METRICS_EMF": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sage.cli", "ingest"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        key = cache.key("market", "ticker", "gateio", "ETH/USDT")
        await eventually(lambda: cache.backend.get(key), timeout=60)
        assert await cache.backend.get(cache.key("market", "lease", "replay")) is not None
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "ingestor stopped" in stderr
    assert await cache.backend.get(cache.key("market", "lease", "replay")) is None
