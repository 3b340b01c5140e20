"""Registration, login, refresh and /users/me, including hostile tokens."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

from sage.auth.tokens import TokenCodec
from tests.support.api import register_and_login

SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


async def test_register_returns_the_new_user_without_the_password(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/api/v1/auth/register", json={"email": "new@example.com", "password": "s3cret-pass", "display_name": "N"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new@example.com"
    assert "password" not in response.text and "s3cret-pass" not in response.text


async def test_emails_are_normalised_so_case_variants_are_one_account(app_client: httpx.AsyncClient) -> None:
    first = await app_client.post(
        "/api/v1/auth/register", json={"email": "  Mixed@Example.COM ", "password": "password1"}
    )
    assert first.status_code == 201
    assert first.json()["email"] == "mixed@example.com"
    login = await app_client.post("/api/v1/auth/login", json={"email": "MIXED@example.com", "password": "password1"})
    assert login.status_code == 200


async def test_duplicate_registration_is_a_conflict(app_client: httpx.AsyncClient) -> None:
    payload = {"email": "dup@example.com", "password": "password1"}
    assert (await app_client.post("/api/v1/auth/register", json=payload)).status_code == 201
    response = await app_client.post("/api/v1/auth/register", json={**payload, "email": "DUP@example.com"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_short_password_is_rejected_naming_the_field(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/api/v1/auth/register", json={"email": "a@example.com", "password": "short"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "password"


async def test_login_returns_tokens_that_open_users_me(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    assert tokens["token_type"] == "bearer"
    me = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == tokens["email"]


async def test_wrong_password_is_unauthorized(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    response = await app_client.post("/api/v1/auth/login", json={"email": tokens["email"], "password": "wrong-pass"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Incorrect email or password"


async def test_unknown_email_gets_the_same_answer_as_a_wrong_password(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/api/v1/auth/login", json={"email": "ghost@example.com", "password": "whatever1"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Incorrect email or password"


async def test_unknown_email_still_pays_for_a_password_hash(monkeypatch, app_client: httpx.AsyncClient) -> None:
    """Timing equality is structural: both paths run exactly one Argon2 verification."""
    from sage.auth import passwords

    verified: list[str] = []
    original = passwords._hasher.verify

    def counting_verify(password: str, hashed: str) -> bool:
        verified.append(hashed)
        return bool(original(password, hashed))

    monkeypatch.setattr(passwords._hasher, "verify", counting_verify)
    await app_client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever1"})
    assert len(verified) == 1 and verified[0].startswith("$argon2")


async def test_refresh_rotates_the_refresh_token(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    response = await app_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    me = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert me.status_code == 200


async def test_reusing_a_refresh_token_revokes_its_whole_family(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    rotated = (await app_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    replay = await app_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    # the thief's replay also ends the legitimate holder's newer token
    after = await app_client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401


async def test_access_token_cannot_be_used_as_a_refresh_token(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    response = await app_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert response.status_code == 401


async def test_refresh_token_cannot_be_used_as_an_access_token(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    me = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert me.status_code == 401


async def test_missing_token_is_unauthorized_with_a_bearer_challenge(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_header_that_is_not_a_bearer_token_is_answered_as_a_missing_token(
    app_client: httpx.AsyncClient,
) -> None:
    tokens = await register_and_login(app_client)
    for header in (f"Basic {tokens['access_token']}", "Bearer", "Bearer   ", tokens["access_token"]):
        response = await app_client.get("/api/v1/users/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["error"]["message"] == "Missing bearer token", header


async def test_the_scheme_word_is_case_insensitive(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    response = await app_client.get("/api/v1/users/me", headers={"Authorization": f"bearer {tokens['access_token']}"})
    assert response.status_code == 200


async def test_authenticated_routes_document_the_bearer_scheme(app_client: httpx.AsyncClient) -> None:
    document = (await app_client.get("/openapi.json")).json()
    assert document["paths"]["/api/v1/users/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "JWT access token from /api/v1/auth/login",
    }


async def test_expired_token_is_unauthorized(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    user_id = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"]
    expired = TokenCodec(SECRET, access_ttl=60, refresh_ttl=600).access_token(
        uuid.UUID(user_id), now=time.time() - 3600
    )
    response = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Token has expired"


async def test_token_signed_with_another_secret_is_rejected(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    user_id = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"]
    forged = TokenCodec("another-secret-of-sufficient-length-000000", access_ttl=60, refresh_ttl=600).access_token(
        uuid.UUID(user_id)
    )
    response = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_unsigned_alg_none_token_is_rejected(app_client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(app_client)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    response = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {unsigned}"})
    assert response.status_code == 401


async def test_malformed_tokens_are_rejected_without_a_server_error(app_client: httpx.AsyncClient) -> None:
    for token in ["garbage", "a.b.c", "Bearer", "e30.e30.", "x" * 5000]:
        response = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


async def test_token_for_a_deleted_user_is_rejected(app_client: httpx.AsyncClient) -> None:
    forged = TokenCodec(SECRET, access_ttl=60, refresh_ttl=600).access_token(uuid.uuid4())
    response = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
