"""Behind CloudFront and the ALB (infra: SAGE_TRUSTED_PROXY_HOPS=2) rate limits key on the viewer.

CloudFront appends the viewer's address to X-Forwarded-For and the ALB appends CloudFront's edge
address, so the app receives `<anything the client sent>, <viewer>, <edge>`. The client's own
prefix must not buy it a fresh limit, and one edge serving many viewers must not pool them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.settings import Settings

EDGE = "130.176.0.17"  # a CloudFront origin-facing address; the ALB is the peer the app sees


@pytest.fixture
async def behind_cloudfront(
    make_settings: Callable[..., Settings], database_url: str, valkey_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url=database_url,
        valkey_url=valkey_url,
        trusted_proxy_hops=2,
        auth_rate_limit_per_ip=3,
        auth_rate_limit_per_email=100,
        auth_rate_limit_window_seconds=60,
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("10.0.0.25", 40000))  # the ALB node
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            yield client


async def login(client: httpx.AsyncClient, forwarded_for: str, email: str) -> int:
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": "wrong-password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


async def test_a_spoofed_forwarded_for_prefix_does_not_escape_the_viewers_limit(behind_cloudfront) -> None:
    codes = [
        await login(behind_cloudfront, f"198.18.0.{i}, 203.0.113.7, {EDGE}", f"user{i}@example.com") for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]


async def test_viewers_behind_the_same_edge_have_limits_of_their_own(behind_cloudfront) -> None:
    first = [await login(behind_cloudfront, f"203.0.113.8, {EDGE}", f"a{i}@example.com") for i in range(4)]
    other = await login(behind_cloudfront, f"203.0.113.9, {EDGE}", "b@example.com")
    assert first[-1] == 429 and other == 401
