"""Structured JSON logs on stdout, with the request id on every line and no secrets."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from sage.observability.logging import configure_logging


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]):
    # configured lazily, inside the test: pytest restores the root logger's level after setup
    def lines() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def start() -> None:
        configure_logging("INFO", json=True)
        capsys.readouterr()

    lines.start = start  # type: ignore[attr-defined]
    yield lines
    logging.getLogger().handlers.clear()


async def test_each_request_is_logged_as_json_with_its_request_id(app_client: httpx.AsyncClient, json_logs) -> None:
    json_logs.start()
    await app_client.post(
        "/api/v1/auth/login",
        json={"email": "nobody@example.com", "password": "hunter2-password"},
        headers={"X-Request-ID": "trace-42"},
    )
    records = json_logs()
    access = [r for r in records if r.get("event") == "request" and r.get("request_id") == "trace-42"]
    assert access and access[0]["status"] == 401 and access[0]["route"] == "/api/v1/auth/login"
    assert all("hunter2" not in json.dumps(r) for r in records)


def test_values_of_secret_looking_keys_are_redacted(json_logs) -> None:
    json_logs.start()
    logging.getLogger("sage.test").info("connecting", extra={"password": "p4ss", "api_key": "sk-1", "host": "db"})
    record = next(r for r in json_logs() if r.get("event") == "connecting")
    assert record["password"] == "[redacted]" and record["api_key"] == "[redacted]"
    assert record["host"] == "db"
