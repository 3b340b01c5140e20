"""Users' market alerts over the API: creation, validation, editing, ownership."""

from __future__ import annotations

import httpx

from tests.alerts.support import create
from tests.support.api import register_and_login


async def test_alert_symbols_are_normalised(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    response = await create(app_client, auth_headers, kind="price_above", symbol="btc_usdt", threshold="100000")
    assert response.status_code == 201, response.text
    assert response.json()["symbol"] == "BTC/USDT"
    listed = await app_client.get("/api/v1/alerts", headers=auth_headers)
    assert [a["symbol"] for a in listed.json()] == ["BTC/USDT"]


async def test_thresholds_read_as_people_write_them(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await create(app_client, auth_headers, kind="price_above", symbol="BTC/USDT", threshold="100000.00")
    assert response.json()["threshold"] == "100000"


async def test_the_first_versions_condition_field_still_works(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await create(app_client, auth_headers, symbol="ETH/USDT", condition="below", threshold="1000")
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "price_below" and response.json()["condition"] == "below"


async def test_invalid_alerts_are_rejected_naming_the_field(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    bad_kind = await create(app_client, auth_headers, kind="sideways", symbol="BTC", threshold="1")
    negative = await create(app_client, auth_headers, kind="price_above", symbol="BTC", threshold="-5")
    unknown_field = await create(
        app_client, auth_headers, kind="price_above", symbol="BTC", threshold="5", colour="red"
    )
    assert bad_kind.status_code == 422 and bad_kind.json()["error"]["details"][0]["field"] == "kind"
    assert negative.status_code == 422 and negative.json()["error"]["details"][0]["field"] == "threshold"
    assert unknown_field.status_code == 422 and unknown_field.json()["error"]["details"][0]["field"] == "colour"


async def test_unknown_symbols_are_rejected(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    for symbol in ("FOOBAR/USDT", "FNG/USDT"):
        response = await create(app_client, auth_headers, kind="price_above", symbol=symbol, threshold="1")
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "symbol"


async def test_kind_specific_fields_are_checked(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    no_window = await create(app_client, auth_headers, kind="change_pct", symbol="BTC/USDT", threshold="5")
    fng_symbol = await create(app_client, auth_headers, kind="fear_greed_above", symbol="BTC/USDT", threshold="80")
    fng_range = await create(app_client, auth_headers, kind="fear_greed_above", threshold="150")
    insane = await create(app_client, auth_headers, kind="price_above", symbol="BTC/USDT", threshold="1e15")
    window_on_level = await create(
        app_client, auth_headers, kind="price_above", symbol="BTC/USDT", threshold="1", window="1h"
    )
    for response, field in (
        (no_window, "window"),
        (fng_symbol, "symbol"),
        (fng_range, "threshold"),
        (insane, "threshold"),
        (window_on_level, "window"),
    ):
        assert response.status_code == 422, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]


async def test_pause_resume_and_edit_with_patch(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    created = (
        await create(app_client, auth_headers, kind="price_above", symbol="BTC/USDT", threshold="150000", note="moon")
    ).json()
    url = f"/api/v1/alerts/{created['id']}"
    paused = await app_client.patch(url, json={"paused": True}, headers=auth_headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    resumed = await app_client.patch(
        url, json={"paused": False, "threshold": "160000", "repeat": "every", "note": None}, headers=auth_headers
    )
    body = resumed.json()
    assert (body["status"], body["threshold"], body["repeat"], body["note"]) == ("active", "160000", "every", None)
    bad = await app_client.patch(url, json={"cooldown_seconds": 5}, headers=auth_headers)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "cooldown_seconds"


async def test_another_users_alert_answers_404(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    created = await create(app_client, auth_headers, kind="price_below", symbol="ETH/USDT", threshold="1000")
    other = {"Authorization": f"Bearer {(await register_and_login(app_client))['access_token']}"}
    url = f"/api/v1/alerts/{created.json()['id']}"
    assert (await app_client.delete(url, headers=other)).status_code == 404
    assert (await app_client.patch(url, json={"paused": True}, headers=other)).status_code == 404
    assert (await app_client.get("/api/v1/alerts", headers=auth_headers)).json()[0]["status"] == "active"


async def test_owner_can_delete_an_alert(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    created = await create(app_client, auth_headers, kind="price_above", symbol="SOL/USDT", threshold="500")
    assert (await app_client.delete(f"/api/v1/alerts/{created.json()['id']}", headers=auth_headers)).status_code == 204
    assert (await app_client.get("/api/v1/alerts", headers=auth_headers)).json() == []


async def test_channels_this_server_cannot_send_are_refused(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    url = "/api/v1/users/me/notification-settings"
    response = await app_client.put(url, json={"email": True}, headers=auth_headers)  # no SAGE_SMTP_HOST here
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "email"
    assert (await app_client.get(url, headers=auth_headers)).json()["email"] is False
