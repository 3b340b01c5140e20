"""The in-app inbox, channel preferences and email verification over the API."""

from __future__ import annotations

import httpx

from tests.alerts.support import create, inbox, move, tick
from tests.chat.support import FakeMarket
from tests.notifications.fake_smtp import FakeSmtp
from tests.notifications.support import verification_link
from tests.support.api import register_and_login


async def _three_notifications(client: httpx.AsyncClient, headers: dict[str, str], market: FakeMarket) -> list[int]:
    for level in ("98000", "99000", "100000"):
        await create(client, headers, kind="price_above", symbol="BTC/USDT", threshold=level)
    ids = []
    for price in ("98500", "99500", "100500"):
        move(market, "BTC/USDT", price)
        assert await tick(client) == 1
        ids.append((await inbox(client, headers))[0]["id"])
    return ids


async def test_the_inbox_lists_unread_first_and_pages(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    first, second, third = await _three_notifications(app_client, auth_headers, market_reader)
    assert (await app_client.post(f"/api/v1/notifications/{third}/read", headers=auth_headers)).status_code == 204
    page = (await app_client.get("/api/v1/notifications?limit=2", headers=auth_headers)).json()
    assert [n["id"] for n in page["items"]] == [second, first]
    assert (page["total"], page["unread"]) == (3, 2)
    rest = (await app_client.get("/api/v1/notifications?limit=2&offset=2", headers=auth_headers)).json()
    assert [n["id"] for n in rest["items"]] == [third] and rest["items"][0]["read_at"] is not None
    marked = await app_client.post("/api/v1/notifications/read-all", headers=auth_headers)
    assert marked.json() == {"marked": 2}
    assert (await app_client.get("/api/v1/notifications", headers=auth_headers)).json()["unread"] == 0


async def test_another_users_notification_answers_404(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    ids = await _three_notifications(app_client, auth_headers, market_reader)
    other = {"Authorization": f"Bearer {(await register_and_login(app_client))['access_token']}"}
    assert (await app_client.post(f"/api/v1/notifications/{ids[0]}/read", headers=other)).status_code == 404
    assert (await app_client.get("/api/v1/notifications", headers=other)).json()["items"] == []


async def test_channel_settings_default_to_in_app_and_reject_unknown_channels(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    url = "/api/v1/users/me/notification-settings"
    defaults = (await app_client.get(url, headers=auth_headers)).json()
    assert defaults == {
        "in_app": True,
        "email": False,
        "web_push": False,
        "email_verified": False,
        "available": ["email", "web_push"],
    }
    unknown = await app_client.put(url, json={"sms": True}, headers=auth_headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "sms"


async def test_the_emailed_link_verifies_the_address(app_client: httpx.AsyncClient, smtp: FakeSmtp) -> None:
    tokens = await register_and_login(app_client)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    link = await verification_link(app_client, headers, smtp, tokens["email"])
    verified = await app_client.post(link)  # the token is the credential: no bearer token
    assert verified.json() == {"status": "verified", "email": tokens["email"]}
    settings = await app_client.get("/api/v1/users/me/notification-settings", headers=headers)
    assert settings.json()["email_verified"] is True


async def test_a_tampered_verification_link_is_refused(app_client: httpx.AsyncClient, smtp: FakeSmtp) -> None:
    tokens = await register_and_login(app_client)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    link = await verification_link(app_client, headers, smtp, tokens["email"])
    response = await app_client.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_token"
    settings = await app_client.get("/api/v1/users/me/notification-settings", headers=headers)
    assert settings.json()["email_verified"] is False
