"""POST /api/v1/auth/logout ends one session: its refresh family is revoked and the family's
access tokens are refused at once (not 15 minutes later), also while Valkey is down; the
user's other sessions keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.settings import Settings
from tests.conftest import register_and_login
from tests.support.servers import ValkeyProcess

PASSWORD = "correct horse battery"


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _me(client: httpx.AsyncClient, tokens: dict[str, str]) -> int:
    return (await client.get("/api/v1/users/me", headers=_bearer(tokens))).status_code


async def _refresh(client: httpx.AsyncClient, tokens: dict[str, str]) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})


async def test_logout_denies_the_access_token_and_the_refresh_token(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    response = await app_client.post("/api/v1/auth/logout", headers=_bearer(tokens))
    assert response.status_code == 204
    denied = await app_client.get("/api/v1/users/me", headers=_bearer(tokens))
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "unauthorized"
    refused = await _refresh(app_client, tokens)
    assert refused.status_code == 401
    assert "ended" in refused.json()["error"]["message"]


async def test_other_sessions_of_the_user_keep_working(app_client: httpx.AsyncClient) -> None:
    laptop = await register_and_login(app_client)
    phone = await _login(app_client, laptop["email"])
    assert (await app_client.post("/api/v1/auth/logout", headers=_bearer(laptop))).status_code == 204
    assert await _me(app_client, phone) == 200
    rotated = await _refresh(app_client, phone)
    assert rotated.status_code == 200
    assert await _me(app_client, rotated.json()) == 200


async def test_every_access_token_of_the_family_is_denied_not_only_the_one_presented(
    app_client: httpx.AsyncClient,
) -> None:
    first = await register_and_login(app_client)
    second = (await _refresh(app_client, first)).json()  # same family, newer access token
    assert (await app_client.post("/api/v1/auth/logout", headers=_bearer(second))).status_code == 204
    assert await _me(app_client, first) == 401
    assert await _me(app_client, second) == 401


async def test_logging_out_twice_or_without_a_token_is_a_401(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    assert (await app_client.post("/api/v1/auth/logout", headers=_bearer(tokens))).status_code == 204
    assert (await app_client.post("/api/v1/auth/logout", headers=_bearer(tokens))).status_code == 401
    assert (await app_client.post("/api/v1/auth/logout")).status_code == 401


async def test_a_reused_refresh_token_also_denies_the_familys_access_tokens(app_client: httpx.AsyncClient) -> None:
    stolen = await register_and_login(app_client)
    rotated = (await _refresh(app_client, stolen)).json()
    assert await _me(app_client, rotated) == 200
    assert (await _refresh(app_client, stolen)).status_code == 401  # reuse: the family is revoked
    assert await _me(app_client, rotated) == 401


# -- with Valkey down -------------------------------------------------------------------------------------
@pytest.fixture
def own_valkey() -> AsyncIterator[ValkeyProcess]:
    server = ValkeyProcess()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def two_tasks(
    own_valkey: ValkeyProcess, make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two API processes on one PostgreSQL and one (stoppable) Valkey."""
    settings = make_settings(database_url=database_url, valkey_url=own_valkey.url, valkey_timeout_seconds=0.5)
    app_a, app_b = create_app(settings), create_app(settings)
    async with (
        LifespanManager(app_a) as a,
        LifespanManager(app_b) as b,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=a.app), base_url="http://a") as client_a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=b.app), base_url="http://b") as client_b,
    ):
        yield client_a, client_b


@pytest.mark.slow
async def test_a_logout_before_a_valkey_outage_still_holds_on_every_task(
    own_valkey: ValkeyProcess, two_tasks: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = two_tasks
    ended = await register_and_login(a)
    other = await _login(a, ended["email"])
    assert (await a.post("/api/v1/auth/logout", headers=_bearer(ended))).status_code == 204
    assert await _me(b, ended) == 401  # another task: the revoked family in PostgreSQL
    own_valkey.stop()
    assert await _me(a, ended) == 401  # Valkey plays no part in revocation
    assert await _me(b, ended) == 401
    assert await _me(b, other) == 200


@pytest.mark.slow
async def test_a_logout_during_a_valkey_outage_holds(
    own_valkey: ValkeyProcess, two_tasks: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = two_tasks
    tokens = await register_and_login(a)
    own_valkey.stop()
    assert (await a.post("/api/v1/auth/logout", headers=_bearer(tokens))).status_code == 204
    assert await _me(a, tokens) == 401
    assert await _me(b, tokens) == 401
    assert (await _refresh(b, tokens)).status_code == 401
