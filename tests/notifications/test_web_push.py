"""Web Push: subscribe, receive an encrypted, VAPID-signed alert; gone subscriptions are removed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.alerts.support import create, inbox, move, services, tick
from tests.chat.support import FakeMarket
from tests.notifications.fake_push import FakePushService


@pytest.fixture
async def push(app_client: httpx.AsyncClient) -> AsyncIterator[FakePushService]:
    key = (await app_client.get("/api/v1/push-subscriptions/vapid-public-key")).json()["public_key"]
    fake = await FakePushService(application_server_key=key).start()
    try:
        yield fake
    finally:
        await fake.stop()


async def _push_user(client: httpx.AsyncClient, headers: dict[str, str], push: FakePushService, browsers: int = 1):
    made = [push.browser() for _ in range(browsers)]
    for browser in made:
        response = await client.post(
            "/api/v1/push-subscriptions", json=browser.subscription(push.origin), headers=headers
        )
        assert response.status_code == 201, response.text
    enabled = await client.put("/api/v1/users/me/notification-settings", json={"web_push": True}, headers=headers)
    assert enabled.status_code == 200, enabled.text
    return made


async def _fire(client: httpx.AsyncClient, headers: dict[str, str], market: FakeMarket) -> None:
    await create(client, headers, kind="price_above", symbol="BTC/USDT", threshold="98000")
    move(market, "BTC/USDT", "99000")
    assert await tick(client) == 1


async def test_an_alert_reaches_the_browser_encrypted_and_signed(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket, push: FakePushService
) -> None:
    [browser] = await _push_user(app_client, auth_headers, push)
    await _fire(app_client, auth_headers, market_reader)
    assert await services(app_client).delivery.drain() == 1
    assert push.refusals == []
    [message] = browser.received
    [note] = await inbox(app_client, auth_headers)
    assert message["payload"]["title"] == "Alert: BTC/USDT above 98,000"
    assert message["payload"]["id"] == note["id"] and message["topic"] == f"n{note['id']}"
    assert [(d["channel"], d["status"]) for d in note["deliveries"]] == [("web_push", "sent")]


async def test_a_gone_subscription_is_removed_and_the_others_still_get_it(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket, push: FakePushService
) -> None:
    old, current = await _push_user(app_client, auth_headers, push, browsers=2)
    push.gone.add(old.token)
    await _fire(app_client, auth_headers, market_reader)
    assert await services(app_client).delivery.drain() == 1
    assert len(current.received) == 1
    remaining = await services(app_client).push_subscriptions.of(
        (await app_client.get("/api/v1/users/me", headers=auth_headers)).json()["id"]
    )
    assert [s.endpoint for s in remaining] == [current.subscription(push.origin)["endpoint"]]


async def test_a_rate_limited_push_is_retried(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket, push: FakePushService
) -> None:
    [browser] = await _push_user(app_client, auth_headers, push)
    push.rate_limited = 1
    await _fire(app_client, auth_headers, market_reader)
    worker = services(app_client).delivery
    assert await worker.run_once() == 1  # 429, Retry-After: 0
    assert await worker.drain() == 1
    assert len(browser.received) == 1
    [note] = await inbox(app_client, auth_headers)
    assert [(d["status"], d["attempts"]) for d in note["deliveries"]] == [("sent", 2)]


async def test_unsubscribing_removes_the_browser(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], push: FakePushService
) -> None:
    [browser] = await _push_user(app_client, auth_headers, push)
    endpoint = browser.subscription(push.origin)["endpoint"]
    gone = await app_client.delete("/api/v1/push-subscriptions", params={"endpoint": endpoint}, headers=auth_headers)
    assert gone.status_code == 204
    again = await app_client.delete("/api/v1/push-subscriptions", params={"endpoint": endpoint}, headers=auth_headers)
    assert again.status_code == 404


async def test_a_malformed_subscription_is_rejected_naming_the_field(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    body = {"endpoint": "not a url", "keys": {"p256dh": "x" * 87, "auth": "y" * 22}}
    response = await app_client.post("/api/v1/push-subscriptions", json=body, headers=auth_headers)
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "endpoint"
