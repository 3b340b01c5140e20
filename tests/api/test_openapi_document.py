"""/openapi.json says what the server answers: Sage's error body on every error, the statuses
each route can return, SSE as text/event-stream, and a complete Allow header on 405."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from sage.api.openapi import ERROR_SCHEMA
from sage.app import create_app

ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA}"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from sage.settings import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("openapi"),
        database_url="postgresql://unused@127.0.0.1:1/none",
        jwt_secret="test-secret-that-is-long-enough-for-hs256-0123456789",
        market_source="off",
        llm_provider="offline",
    )
    return create_app(settings).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_fastapis_validation_error_schema_is_gone(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(document)
    assert ERROR_SCHEMA in document["components"]["schemas"]


def test_every_api_error_response_is_sages_error_body(document: dict[str, Any]) -> None:
    wrong = [
        f"{method.upper()} {path} {status}"
        for path, method, op in _operations(document)
        if path.startswith("/api/")
        for status, response in op["responses"].items()
        if status[0] in "45" and response["content"]["application/json"]["schema"] != {"$ref": ERROR_REF}
    ]
    assert wrong == []


def test_statuses_that_follow_from_a_routes_shape_are_documented(document: dict[str, Any]) -> None:
    for path, method, op in _operations(document):
        statuses = set(op["responses"])
        label = f"{method.upper()} {path}"
        if op.get("security"):
            assert "401" in statuses, label
        if "requestBody" in op:
            assert {"400", "413", "422"} <= statuses, label
        if "{" in path:
            assert "404" in statuses, label
        if path.startswith("/api/"):
            assert "Retry-After" in op["responses"]["503"]["headers"], label


def test_route_specific_statuses_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert {"409", "429"} <= set(paths["/api/v1/auth/register"]["post"]["responses"])
    assert {"401", "429"} <= set(paths["/api/v1/auth/login"]["post"]["responses"])
    assert "429" in paths["/api/v1/chats/{chat_id}/messages"]["post"]["responses"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/chats/{chat_id}/messages", "post"),
        ("/api/v1/chats/{chat_id}/messages/{message_id}/stream", "get"),
        ("/api/v1/market/stream", "get"),
    ],
)
def test_server_sent_events_are_documented_as_an_event_stream(document: dict[str, Any], path: str, method: str) -> None:
    assert list(document["paths"][path][method]["responses"]["200"]["content"]) == ["text/event-stream"]


def test_symbol_paths_and_decimal_bodies_state_what_is_accepted(document: dict[str, Any]) -> None:
    ticker = document["paths"]["/api/v1/market/tickers/{symbol}"]["get"]["parameters"][0]["schema"]
    assert "pattern" in ticker
    quantity = document["components"]["schemas"]["PositionIn"]["properties"]["quantity"]
    string_form = next(s for s in quantity["anyOf"] if s["type"] == "string")
    import re

    assert re.fullmatch(string_form["pattern"], "0.5") and not re.fullmatch(string_form["pattern"], "")
    assert not re.fullmatch(string_form["pattern"], "0")


async def test_405_lists_every_method_the_path_answers(app_client: httpx.AsyncClient) -> None:
    response = await app_client.request("OPTIONS", f"/api/v1/chats/{uuid.uuid4()}")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "PATCH", "DELETE"}
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_405_on_a_path_with_one_method(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/api/v1/auth/logout")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
