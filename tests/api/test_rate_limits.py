"""Login and register are limited per client IP and per email, shared through Valkey."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.settings import Settings


@pytest.fixture
async def limited_client(
    make_settings: Callable[..., Settings], database_url: str, valkey_url: str
) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    settings = make_settings(
        database_url=database_url,
        valkey_url=valkey_url,
        auth_rate_limit_per_ip=5,
        auth_rate_limit_per_email=3,
        auth_rate_limit_window_seconds=60,
    )
    app = create_app(settings)
    clients: list[httpx.AsyncClient] = []
    async with LifespanManager(app) as manager:

        def client_from(ip: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=manager.app, client=(ip, 40000))
            client = httpx.AsyncClient(transport=transport, base_url="http://sage.test")
            clients.append(client)
            return client

        yield client_from
        for client in clients:
            await client.aclose()


async def _login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": "wrong-password"})


async def test_too_many_logins_for_one_email_answer_429_with_retry_after(limited_client) -> None:
    responses = [await _login(limited_client(f"10.0.0.{i}"), "victim@example.com") for i in range(4)]
    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    limited = responses[-1]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limited"


async def test_one_ip_trying_many_emails_is_limited(limited_client) -> None:
    client = limited_client("10.1.1.1")
    codes = [(await _login(client, f"user{i}@example.com")).status_code for i in range(6)]
    assert codes == [401] * 5 + [429]


async def test_the_email_limit_ignores_case_and_spaces(limited_client) -> None:
    variants = ["Victim@example.com", "victim@EXAMPLE.com", " victim@example.com", "VICTIM@example.com"]
    codes = [(await _login(limited_client(f"10.2.0.{i}"), v)).status_code for i, v in enumerate(variants)]
    assert codes[-1] == 429


async def test_limits_are_shared_by_every_api_process(make_settings, database_url: str, valkey_url: str) -> None:
    settings = make_settings(
        database_url=database_url, valkey_url=valkey_url, auth_rate_limit_per_email=2, auth_rate_limit_per_ip=100
    )
    app_a, app_b = create_app(settings), create_app(settings)
    async with LifespanManager(app_a) as a, LifespanManager(app_b) as b:
        codes = []
        for manager in (a, b, a):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as c:
                codes.append((await _login(c, "shared@example.com")).status_code)
    assert codes == [401, 401, 429]


async def test_register_is_rate_limited_too(limited_client) -> None:
    client = limited_client("10.3.3.3")
    codes = [
        (
            await client.post("/api/v1/auth/register", json={"email": f"r{i}@example.com", "password": "password1"})
        ).status_code
        for i in range(6)
    ]
    assert codes == [201] * 5 + [429]
