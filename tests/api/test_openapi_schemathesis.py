"""Schemathesis over every operation of /openapi.json, against the real app under uvicorn on
127.0.0.1 with real PostgreSQL and Valkey, as a logged-in user: every check schemathesis has
(status codes, content types, response schemas and headers, positive and negative data,
unsupported methods, ...), a bounded number of examples per operation and a fixed seed."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from sage.app import create_app
from sage.settings import Settings
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


LOGOUT = "/api/v1/auth/logout"


@dataclass(frozen=True)
class LiveAPI:
    base_url: str
    token: str
    email: str

    def new_session(self) -> str:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            login = client.post("/api/v1/auth/login", json={"email": self.email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return str(login.json()["access_token"])


class ThreadedServer:
    """uvicorn in a thread of its own (its own event loop), so schemathesis's blocking calls
    from the test never stall the server."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="schemathesis-uvicorn", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 90
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def _settings(data_dir: Path, database_url: str, valkey_url: str | None) -> Settings:
    return Settings(
        env="development",
        data_dir=data_dir,
        database_url=database_url,
        valkey_url=valkey_url,
        market_source="off",
        jwt_secret="test-secret-that-is-long-enough-for-hs256-0123456789",
        llm_provider="offline",
        metrics_emf=False,
        # Limits high enough that generated requests reach the routes' logic; the limits have tests of their own.
        auth_rate_limit_per_ip=1_000_000,
        auth_rate_limit_per_email=1_000_000,
        chat_rate_per_minute=1_000_000,
    )


@pytest.fixture(scope="module")
async def api_database(pg_server_url: str, template_database: str) -> AsyncIterator[str]:
    from sage.ops.pgtools import with_database as _with_database

    name = f"sage_st_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_with_database(pg_server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await admin.close()
    yield _with_database(pg_server_url, name)
    admin = await asyncpg.connect(_with_database(pg_server_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def live_api(api_database: str, valkey_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveAPI]:
    valkey_url = urlsplit(valkey_server_url)._replace(path="/7").geturl()  # a logical database of its own, emptied
    import valkey

    with valkey.Valkey.from_url(valkey_url) as client:
        client.flushdb()
    server = ThreadedServer(create_app(_settings(tmp_path_factory.mktemp("schemathesis"), api_database, valkey_url)))
    server.start()
    try:
        base_url = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base_url, timeout=30) as client:
            email = f"schemathesis-{uuid.uuid4().hex[:8]}@example.com"
            assert client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
            login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert login.status_code == 200, login.text
            assert client.get("/openapi.json").json() == DOCUMENT
        SESSION["api"] = LiveAPI(base_url, login.json()["access_token"], email)
        yield SESSION["api"]
        SESSION.clear()
    finally:
        server.stop()


def _document() -> dict[str, Any]:
    """The OpenAPI document as the app builds it (no server needed; the running one serves
    the same document, which `live_api` checks)."""
    return create_app(_settings(Path(tempfile.gettempdir()), "postgresql://unused@127.0.0.1:1/none", None)).openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


# The logged-in user, set by `live_api` (schemathesis asks its auth providers per case).
SESSION: dict[str, LiveAPI] = {}


@schema.auth(refresh_interval=None).skip_for(path=LOGOUT)  # no caching: nothing is known at collection
class UserToken:
    """The bearer token of the user `live_api` logged in. Through schemathesis's auth (rather
    than extra headers) it knows which requests are authenticated: it also sends them without."""

    def get(self, case: Any, ctx: Any) -> str | None:
        api = SESSION.get("api")  # None while pytest collects, before the server runs
        return api.token if api else None

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.auth(refresh_interval=None).apply_to(path=LOGOUT)
class OwnSessionToken(UserToken):
    """Logout ends the session it is called with: each call gets a session of its own."""

    def get(self, case: Any, ctx: Any) -> str | None:
        api = SESSION.get("api")
        return api.new_session() if api else None


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,  # a fixed seed: the same cases on every run
    database=None,  # and no replay of earlier runs' examples
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_is_what_the_openapi_document_says(case: Any, live_api: LiveAPI) -> None:
    if not _is_endless_stream(case):
        case.call_and_validate(base_url=live_api.base_url, timeout=30, excluded_checks=_excluded(case))
        return
    # The live market stream never ends: schemathesis reads an event stream until it goes quiet
    # for the read timeout, so a short one checks what it answered up to then. Should the first
    # byte itself come later than that (a loaded machine), the call is made again with a longer one.
    read_timeout = 0.5
    while True:
        try:
            case.call_and_validate(base_url=live_api.base_url, timeout=(30, read_timeout))
            return
        except requests.exceptions.ReadTimeout:
            if read_timeout >= 16:
                raise
            read_timeout *= 2


def _excluded(case: Any) -> list[Any]:
    """The deprecated `/portfolio/...` aliases book against the market: a well-formed symbol the
    market has never listed is refused with a 422 naming it, a rule no schema can state (the
    market's list changes at run time). Every other check still runs on them."""
    if case.path.startswith("/api/v1/portfolio/") or (case.method, case.path) in STATEFUL_ACCEPTANCE:
        return [schemathesis.checks.positive_data_acceptance]
    return []


# Operations whose acceptance of a well-formed body depends on rules no schema states: an
# alert's fields required by its kind (a symbol for price alerts, a window for change_pct),
# the channels this server is configured to send, whether email is configured, and whether a
# verification token is genuine. Their refusals are 4xx naming the field; every other check runs.
STATEFUL_ACCEPTANCE = {
    ("POST", "/api/v1/alerts"),
    ("PATCH", "/api/v1/alerts/{alert_id}"),
    ("PUT", "/api/v1/users/me/notification-settings"),
    ("POST", "/api/v1/users/me/email/verify-request"),
    ("POST", "/api/v1/users/me/email/verify"),
    ("GET", "/api/v1/users/me/email/verify"),
}


ENDLESS_STREAMS = {"/api/v1/market/stream", "/api/v1/notifications/stream"}


def _is_endless_stream(case: Any) -> bool:
    return bool(case.method == "GET" and case.path in ENDLESS_STREAMS)
