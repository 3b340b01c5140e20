"""Helpers: a user whose address is verified through the real emailed link, with email alerts on."""

from __future__ import annotations

import re

import httpx

from tests.notifications.fake_smtp import FakeSmtp
from tests.support.api import register_and_login

LINK = re.compile(r"(/api/v1/users/me/email/verify\?token=[\w.\-]+)")


async def verification_link(client: httpx.AsyncClient, headers: dict[str, str], smtp: FakeSmtp, email: str) -> str:
    response = await client.post("/api/v1/users/me/email/verify-request", headers=headers)
    assert response.status_code == 202, response.text
    [message] = smtp.to(email)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = LINK.search(body.get_content())
    assert match is not None, body.get_content()
    return match.group(1)


async def email_user(client: httpx.AsyncClient, smtp: FakeSmtp) -> tuple[dict[str, str], str]:
    """A new user with a verified address and email alerts enabled: (auth headers, address)."""
    tokens = await register_and_login(client)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    link = await verification_link(client, headers, smtp, tokens["email"])
    assert (await client.get(link)).status_code == 200
    smtp.received.clear()
    response = await client.put(
        "/api/v1/users/me/notification-settings", json={"email": True, "web_push": False}, headers=headers
    )
    assert response.status_code == 200 and response.json()["email_verified"] is True, response.text
    return headers, tokens["email"]
