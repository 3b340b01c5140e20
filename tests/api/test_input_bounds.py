"""Hostile input gets a 422 naming what is wrong, never a 500: NUL characters in text,
integers past int64, too many symbols in one request. The structural tests keep it so
for routes added later: every body model derives from RequestModel, every integer
parameter carries int64-safe bounds."""

from __future__ import annotations

import typing

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from sage.api.routes.market import MAX_SYMBOLS_PER_REQUEST
from sage.api.schemas import INT64_MAX, RequestModel
from sage.app import create_app
from sage.market.service import MarketService

NUL = "a\u0000b"


def _fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return {d["field"] for d in error["details"]}


async def test_nul_in_register_display_name_is_a_422_naming_the_field(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/api/v1/auth/register",
        json={"email": "nul@example.com", "password": "correct horse battery", "display_name": NUL},
    )
    assert _fields(response) == {"display_name"}
    assert "NUL" in response.json()["error"]["details"][0]["message"]


async def test_nul_in_a_password_is_a_422_not_a_500(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": NUL})
    assert _fields(response) == {"password"}


async def test_nul_in_a_new_chat_title_is_a_422(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    response = await app_client.post("/api/v1/chats", json={"title": NUL}, headers=auth_headers)
    assert _fields(response) == {"title"}


async def test_nul_in_a_rename_is_a_422(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    chat = (await app_client.post("/api/v1/chats", json={"title": "ok"}, headers=auth_headers)).json()
    response = await app_client.patch(f"/api/v1/chats/{chat['id']}", json={"title": NUL}, headers=auth_headers)
    assert _fields(response) == {"title"}
    unchanged = await app_client.get(f"/api/v1/chats/{chat['id']}", headers=auth_headers)
    assert unchanged.json()["title"] == "ok"


async def test_nul_in_message_content_is_a_422(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    chat = (await app_client.post("/api/v1/chats", json={}, headers=auth_headers)).json()
    response = await app_client.post(
        f"/api/v1/chats/{chat['id']}/messages", json={"content": "price of BTC?" + NUL}, headers=auth_headers
    )
    assert _fields(response) == {"content"}


async def test_a_before_cursor_past_int64_is_a_422(app_client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    chat = (await app_client.post("/api/v1/chats", json={}, headers=auth_headers)).json()
    url = f"/api/v1/chats/{chat['id']}/messages"
    response = await app_client.get(url, params={"before": str(2**63)}, headers=auth_headers)
    assert _fields(response) == {"before"}
    at_the_limit = await app_client.get(url, params={"before": str(INT64_MAX)}, headers=auth_headers)
    assert at_the_limit.status_code == 200, at_the_limit.text


async def test_more_symbols_than_the_limit_is_a_422_naming_it(app_client: httpx.AsyncClient) -> None:
    symbols = ",".join(f"B{i}" for i in range(10_000))  # the case, within httpx's URL limit
    response = await app_client.get(f"/api/v1/market/tickers?symbols={symbols}")
    assert _fields(response) == {"symbols"}
    assert str(MAX_SYMBOLS_PER_REQUEST) in response.json()["error"]["message"]


async def test_the_maximum_number_of_symbols_is_served(app_client: httpx.AsyncClient) -> None:
    symbols = ",".join(f"C{i}/USDT" for i in range(MAX_SYMBOLS_PER_REQUEST))
    response = await app_client.get("/api/v1/market/tickers", params={"symbols": symbols})
    assert response.status_code == 200, response.text
    assert len(response.json()["missing"]) == MAX_SYMBOLS_PER_REQUEST


def test_symbol_normalisation_keeps_the_first_spelling_order_and_drops_repeats() -> None:
    normalize = MarketService._normalize
    service = typing.cast(MarketService, object.__new__(MarketService))
    asked = ["eth_usdt", "BTC/USDT", "ETH-USDT", "not a symbol!", "btcusdt"] * 1000
    assert normalize(service, asked) == ["ETH/USDT", "BTC/USDT"]


# -- structure: what keeps routes added later safe -------------------------------------------------------
def _api_routes(routes: typing.Iterable[typing.Any]) -> typing.Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI nests included routers uncopied
        if included is not None:
            yield from _api_routes(included.routes)


def _routes(make_settings: typing.Callable[..., typing.Any]) -> list[APIRoute]:
    app: FastAPI = create_app(make_settings(database_url="postgresql://unused@127.0.0.1:1/none"))
    return list(_api_routes(app.routes))


def _models(annotation: typing.Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def test_every_request_body_model_rejects_nul_characters(make_settings) -> None:
    bodies = [
        (route.path, model)
        for route in _routes(make_settings)
        for param in route.dependant.body_params
        for model in _models(param.field_info.annotation)
    ]
    assert bodies, "no body models found"
    assert [(path, m.__name__) for path, m in bodies if not issubclass(m, RequestModel)] == []


def test_every_integer_parameter_is_bounded_within_int64(make_settings) -> None:
    from sage.app import create_app as build

    spec = build(make_settings(database_url="postgresql://unused@127.0.0.1:1/none")).openapi()
    unbounded = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                schemas = [param.get("schema", {})]
                schemas += param.get("schema", {}).get("anyOf", [])
                for schema in schemas:
                    if schema.get("type") != "integer":
                        continue
                    low, high = schema.get("minimum"), schema.get("maximum")
                    if low is None or high is None or low < -(2**63) or high > INT64_MAX:
                        unbounded.append(f"{method.upper()} {path} {param['name']}")
    assert unbounded == []


@pytest.mark.parametrize("value", ["", "x" * 10])
def test_request_models_still_accept_ordinary_text(value: str) -> None:
    class Body(RequestModel):
        text: str
        tags: list[str] = []

    assert Body(text=value, tags=[value]).text == value
    with pytest.raises(ValueError, match="NUL"):
        Body(text="ok", tags=["fine", "bad\u0000"])
