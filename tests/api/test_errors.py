"""Every error leaves as {"error": {"code", "message", "details"}}, never a traceback."""

from __future__ import annotations

import httpx
from fastapi import FastAPI


async def test_unknown_route_is_a_json_404(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "No route for GET /api/v1/does-not-exist", "details": None}
    }


async def test_wrong_method_is_a_json_405(app_client: httpx.AsyncClient) -> None:
    response = await app_client.delete("/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_invalid_body_is_a_422_naming_each_field(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/api/v1/auth/register", json={"email": "not-an-email"})
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert {d["field"] for d in body["details"]} == {"email", "password"}


async def test_malformed_json_is_a_422_not_a_500(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_unhandled_exception_is_a_500_with_only_a_request_id(app_client: httpx.AsyncClient) -> None:
    app: FastAPI = app_client.app  # type: ignore[attr-defined]

    async def explode() -> None:
        raise RuntimeError("postgresql://admin:hunter2@db/secret internals")

    app.router.add_api_route("/boom", explode)
    response = await app_client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-123"
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Internal server error", "details": {"request_id": "req-123"}}
    }
    assert "hunter2" not in response.text and "Traceback" not in response.text


async def test_request_id_is_generated_when_absent(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health")
    assert len(response.headers["x-request-id"]) == 32


async def test_insane_request_id_is_replaced(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health", headers={"X-Request-ID": "bad id\twith spaces" + "x" * 300})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


async def test_cors_allows_the_configured_front_end_origin(app_client: httpx.AsyncClient) -> None:
    response = await app_client.options(
        "/api/v1/auth/login",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"


async def test_a_simple_cross_origin_request_gets_the_cors_headers_once(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health", headers={"Origin": "http://localhost:5173"})
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "X-Request-ID" in response.headers["access-control-expose-headers"]
    assert response.headers.get_list("vary") == ["Origin"]


async def test_a_request_without_origin_varies_on_origin_and_gets_no_cors_headers(
    app_client: httpx.AsyncClient,
) -> None:
    # The CORS layer lets these through; the request-context middleware adds Vary so a cache
    # never serves this response to a cross-origin request.
    response = await app_client.get("/health")
    assert response.headers.get_list("vary") == ["Origin"]
    assert not [name for name in response.headers if name.startswith("access-control-")]
    missing = await app_client.get("/api/v1/users/me")
    assert missing.status_code == 401
    assert missing.headers.get_list("vary") == ["Origin"]


async def test_cors_refuses_an_unknown_origin(app_client: httpx.AsyncClient) -> None:
    response = await app_client.options(
        "/api/v1/auth/login",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


async def test_openapi_document_is_served(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/openapi.json")
    assert response.status_code == 200
    assert "/api/v1/auth/login" in response.json()["paths"]
    assert (await app_client.get("/docs")).status_code == 200
