"""Chat CRUD, the cached chat list, and message pagination (offline provider, in-process ASGI)."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from sage.store.chat_tables import Chat
from tests.support.api import register_and_login


async def _login(client) -> dict[str, str]:
    tokens = await register_and_login(client)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_chats_need_a_login(app_client):
    response = await app_client.get("/api/v1/chats")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_chat_is_created_with_a_title_or_a_default_one(app_client, auth_headers):
    named = await app_client.post("/api/v1/chats", json={"title": "  Weekly review  "}, headers=auth_headers)
    unnamed = await app_client.post("/api/v1/chats", json={}, headers=auth_headers)
    assert named.status_code == 201 and named.json()["title"] == "Weekly review"
    assert unnamed.status_code == 201 and unnamed.json()["title"] == "New chat"
    uuid.UUID(named.json()["id"])


async def test_bad_chat_bodies_are_422_with_the_field_named(app_client, auth_headers):
    for body in ({"title": "   "}, {"title": "x" * 201}, {"title": "ok", "owner": "me"}):
        response = await app_client.post("/api/v1/chats", json=body, headers=auth_headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"


async def test_the_list_is_newest_first_and_paginated(app_client, auth_headers):
    ids = [
        (await app_client.post("/api/v1/chats", json={"title": f"c{i}"}, headers=auth_headers)).json()["id"]
        for i in range(5)
    ]
    first = (await app_client.get("/api/v1/chats?limit=2", headers=auth_headers)).json()
    rest = (await app_client.get("/api/v1/chats?limit=10&offset=2", headers=auth_headers)).json()
    assert first["total"] == 5
    assert [c["id"] for c in first["items"]] == ids[::-1][:2]
    assert [c["id"] for c in rest["items"]] == ids[::-1][2:]


async def test_the_list_is_served_from_the_cache_until_a_write_replaces_it(app_client, auth_headers):
    chat = (await app_client.post("/api/v1/chats", json={"title": "original"}, headers=auth_headers)).json()
    assert (await app_client.get("/api/v1/chats", headers=auth_headers)).json()["items"][0]["title"] == "original"
    runtime = app_client.app.state.runtime
    async with runtime.db.session() as session:  # behind the service's back: the cache cannot know
        await session.execute(update(Chat).where(Chat.id == uuid.UUID(chat["id"])).values(title="changed in db"))
        await session.commit()
    cached = (await app_client.get("/api/v1/chats", headers=auth_headers)).json()
    assert cached["items"][0]["title"] == "original"
    await app_client.post("/api/v1/chats", json={"title": "another"}, headers=auth_headers)
    fresh = (await app_client.get("/api/v1/chats", headers=auth_headers)).json()
    assert [c["title"] for c in fresh["items"]] == ["another", "changed in db"]


async def test_rename_and_delete_show_in_the_list_at_once(app_client, auth_headers):
    chat = (await app_client.post("/api/v1/chats", json={"title": "old"}, headers=auth_headers)).json()
    await app_client.get("/api/v1/chats", headers=auth_headers)  # warm the cache
    renamed = await app_client.patch(f"/api/v1/chats/{chat['id']}", json={"title": "new"}, headers=auth_headers)
    assert renamed.status_code == 200 and renamed.json()["title"] == "new"
    assert (await app_client.get("/api/v1/chats", headers=auth_headers)).json()["items"][0]["title"] == "new"
    deleted = await app_client.delete(f"/api/v1/chats/{chat['id']}", headers=auth_headers)
    assert deleted.status_code == 204
    assert (await app_client.get("/api/v1/chats", headers=auth_headers)).json()["items"] == []
    assert (await app_client.get(f"/api/v1/chats/{chat['id']}", headers=auth_headers)).status_code == 404


async def test_users_only_see_their_own_chats(app_client, auth_headers):
    await app_client.post("/api/v1/chats", json={"title": "mine"}, headers=auth_headers)
    other = await _login(app_client)
    assert (await app_client.get("/api/v1/chats", headers=other)).json()["items"] == []


async def test_messages_page_backwards_from_the_newest(app_client, auth_headers):
    chat_id = (await app_client.post("/api/v1/chats", json={}, headers=auth_headers)).json()["id"]
    for i in range(3):
        response = await app_client.post(
            f"/api/v1/chats/{chat_id}/messages", json={"content": f"question {i}"}, headers=auth_headers
        )
        assert response.status_code == 200
    newest = (await app_client.get(f"/api/v1/chats/{chat_id}/messages?limit=4", headers=auth_headers)).json()
    older = (
        await app_client.get(
            f"/api/v1/chats/{chat_id}/messages?limit=4&before={newest['next_before']}", headers=auth_headers
        )
    ).json()
    assert older["next_before"] is None
    everything = older["items"] + newest["items"]
    assert [m["role"] for m in everything] == ["user", "assistant"] * 3
    assert [m["content"] for m in everything if m["role"] == "user"] == ["question 0", "question 1", "question 2"]
    assert [m["seq"] for m in everything] == sorted(m["seq"] for m in everything)


async def test_the_first_question_names_an_untitled_chat(app_client, auth_headers):
    chat_id = (await app_client.post("/api/v1/chats", json={}, headers=auth_headers)).json()["id"]
    await app_client.post(
        f"/api/v1/chats/{chat_id}/messages", json={"content": "How is   ETH doing this week?"}, headers=auth_headers
    )
    await app_client.post(f"/api/v1/chats/{chat_id}/messages", json={"content": "And SOL?"}, headers=auth_headers)
    chat = (await app_client.get(f"/api/v1/chats/{chat_id}", headers=auth_headers)).json()
    assert chat["title"] == "How is ETH doing this week?"


async def test_a_blank_or_oversized_question_is_422(app_client, auth_headers):
    chat_id = (await app_client.post("/api/v1/chats", json={}, headers=auth_headers)).json()["id"]
    for body in ({"content": "   "}, {"content": "x" * 4001}, {}):
        response = await app_client.post(f"/api/v1/chats/{chat_id}/messages", json=body, headers=auth_headers)
        assert response.status_code == 422


async def test_an_unknown_chat_is_404(app_client, auth_headers):
    response = await app_client.post(
        f"/api/v1/chats/{uuid.uuid4()}/messages", json={"content": "hi"}, headers=auth_headers
    )
    assert response.status_code == 404
