"""Sentry against a local fake ingest endpoint: errors reach it, secrets do not."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sentry_sdk
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.observability.metrics import Metrics
from sage.observability.sentry import FILTERED, init_sentry, scrub_event, scrub_text

PASSWORD = "hunter2-Sup3r-Secret"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA"
API_KEY = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv"
EMAIL = "alice.secret@example.com"
COOKIE = "session=c00kie-Value-Secret"
SECRETS = [PASSWORD, JWT, API_KEY, EMAIL, "c00kie-Value-Secret"]


class FakeSentry:
    """Accepts envelopes at /api/<project>/envelope/ like Sentry's ingest; keeps the raw bodies."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                with fake.lock:
                    fake.bodies.append(raw)
                body = json.dumps({"id": "0" * 32}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/42"

    def items(self) -> list[tuple[dict[str, Any], Any]]:
        """(item header, payload) of every envelope item received."""
        out = []
        with self.lock:
            bodies = list(self.bodies)
        for body in bodies:
            lines = body.split(b"\n")
            index = 1
            while index + 1 < len(lines):
                header = json.loads(lines[index])
                payload = lines[index + 1]
                try:
                    out.append((header, json.loads(payload)))
                except ValueError:
                    out.append((header, payload))
                index += 2
        return out

    def events(self) -> list[dict[str, Any]]:
        return [p for h, p in self.items() if h.get("type") == "event"]

    def raw(self) -> bytes:
        with self.lock:
            return b"\n".join(self.bodies)


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    fake = FakeSentry()
    try:
        yield fake
    finally:
        sentry_sdk.get_global_scope().set_client(None)  # back to no Sentry for the rest of the session
        fake.server.shutdown()
        fake.server.server_close()


@pytest.fixture
async def restore_task_factory():
    loop = asyncio.get_running_loop()
    original = loop.get_task_factory()
    yield
    loop.set_task_factory(original)


async def test_an_unhandled_error_is_reported_without_any_secret(
    sentry, restore_task_factory, make_settings, database_url, valkey_url
):
    settings = make_settings(
        database_url=database_url,
        valkey_url=valkey_url,
        sentry_dsn=sentry.dsn,
        sentry_traces_sample_rate=1.0,
        release="0123abc",
        env="development",
    )
    app = create_app(settings, metrics=Metrics())

    @app.get("/boom")
    async def boom(token: str = "", email: str = "") -> None:
        password = PASSWORD  # noqa: F841 - a local variable Sentry would capture
        api_key = API_KEY  # noqa: F841
        config = {"password": PASSWORD, "nested": {"api_key": API_KEY}}  # noqa: F841
        raise RuntimeError(f"login failed for {EMAIL} with password={PASSWORD} and Bearer {JWT}")

    app.router.routes.insert(0, app.router.routes.pop())  # before the frontend's catch-all mount
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            response = await client.get(
                f"/boom?token={JWT}&email={EMAIL}",
                headers={"Authorization": f"Bearer {JWT}", "Cookie": COOKIE, "X-Api-Key": API_KEY},
            )
    assert response.status_code == 500
    assert sentry_sdk.flush(timeout=10) is not False

    events = sentry.events()
    errors = [e for e in events if e.get("exception")]
    assert errors, "the unhandled error was not reported"
    exception = errors[0]["exception"]["values"][-1]
    assert exception["type"] == "RuntimeError"
    assert errors[0]["environment"] == "development"
    assert errors[0]["release"] == "0123abc"
    raw = sentry.raw().decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in raw


def test_sentry_stays_off_without_a_dsn(make_settings):
    sentry_sdk.get_global_scope().set_client(None)
    assert init_sentry(make_settings()) is False
    assert not sentry_sdk.get_client().is_active()


def test_scrubbing_replaces_secret_keys_anywhere_in_the_event():
    event = {
        "request": {
            "headers": {"Authorization": f"Bearer {JWT}", "Cookie": COOKIE, "User-Agent": "x"},
            "cookies": {"session": "c00kie-Value-Secret"},
            "data": {"password": PASSWORD},
            "query_string": f"token={JWT}&page=2",
        },
        "user": {"id": "u1", "email": EMAIL, "ip_address": "1.2.3.4"},
        "extra": {"settings": {"anthropic_api_key": API_KEY, "jwt_secret": "x", "port": 3000}},
        "breadcrumbs": {"values": [{"message": f"login {EMAIL} password: {PASSWORD}"}]},
    }
    out = scrub_event(event)
    text = json.dumps(out)
    for secret in SECRETS:
        assert secret not in text
    assert out["request"]["headers"]["User-Agent"] == "x"
    assert out["request"]["headers"]["Authorization"] == FILTERED
    assert "cookies" not in out["request"] and "data" not in out["request"]
    assert out["user"] == {"id": "u1"}
    assert out["extra"]["settings"]["port"] == 3000
    assert out["request"]["query_string"].endswith("&page=2")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"contact {EMAIL}", EMAIL),
        (f"Authorization: Bearer {JWT}", JWT),
        (f"key {API_KEY} used", API_KEY),
        (f"postgresql://sage:{PASSWORD}@db:5432/sage", PASSWORD),
        (f'{{"password": "{PASSWORD}"}}', PASSWORD),
        ("https://discord.com/api/webhooks/123/tokenpart-SECRET", "tokenpart-SECRET"),
        ("AKIAABCDEFGHIJKLMNOP leaked", "AKIAABCDEFGHIJKLMNOP"),
    ],
)
def test_free_text_loses_its_secrets(text, secret):
    assert secret not in scrub_text(text)
