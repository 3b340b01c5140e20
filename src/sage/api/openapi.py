"""The OpenAPI document, made true to what the server answers.

FastAPI documents the success response and a 422 with its own `HTTPValidationError`. Sage
answers every error with `{"error": {"code", "message", "details"}}` (sage.api.errors), and
some statuses follow from how a route is built rather than from its code. `truthful()`
rewrites the generated document once, for every route (routes added later included):

- every error response carries `ErrorBody`; FastAPI's validation schemas are dropped;
- 422 where a route takes parameters or a body, 400 (unreadable) and 413 (the body cap) where
  it takes a body,
  401 where it needs a bearer token, 404 where its path names a resource, 503 on every
  /api route (database or cache unavailable, with Retry-After);
- Server-Sent Events responses are `text/event-stream` only.

Statuses that follow from a route's own logic (409 on a duplicate, 429 rate limits, 401 on
a login) are declared on the route with `error_responses(...)`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

ERROR_SCHEMA = "ErrorBody"
_REF = f"#/components/schemas/{ERROR_SCHEMA}"
EVENT_STREAM = "text/event-stream"

DESCRIPTIONS = {
    400: "The request body could not be read as JSON text (e.g. not UTF-8)",
    401: "Missing, invalid, expired or revoked credentials (`WWW-Authenticate: Bearer`)",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body larger than the route's cap (SAGE_MAX_BODY_BYTES / SAGE_MAX_UPLOAD_BYTES)",
    422: "Invalid request: `details` names each field at fault",
    429: "Rate limited (`Retry-After` says when to retry)",
    503: "Temporarily unavailable: database, cache or model capacity (`Retry-After` says when to retry)",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`, `rate_limited`")
    message: str = Field(description="Human-readable explanation")
    details: Any = Field(default=None, description="Structured context, e.g. the fields at fault; may be null")


class ErrorBody(BaseModel):
    """Every error response: `{"error": {"code", "message", "details"}}`."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the statuses a route answers by its own logic (409, 429, ...)."""
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS.get(status, "Error")} for status in statuses}


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` with the generated document, rewritten once by `truthful()`."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app.state, "openapi_truthful", False):
            app.openapi_schema = truthful(generate())
            app.state.openapi_truthful = True
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF}}}


def _ensure(responses: dict[str, Any], status: int) -> None:
    entry = responses.setdefault(str(status), {"description": DESCRIPTIONS.get(status, "Error")})
    entry["content"] = _error_content()
    if status in (429, 503):
        entry.setdefault("headers", {}).update(_RETRY_AFTER)


def truthful(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components[ERROR_SCHEMA] = error_schema
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                _operation(path, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return document


def _operation(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        _ensure(responses, 422)
    if "requestBody" in operation:
        _ensure(responses, 400)
        _ensure(responses, 413)
    if operation.get("security"):
        _ensure(responses, 401)
    if re.search(r"{[^}]+}", path):
        _ensure(responses, 404)
    if path.startswith("/api/"):
        _ensure(responses, 503)
    for status, response in responses.items():
        content = response.get("content", {})
        if status.startswith(("4", "5")):
            if _is_fastapi_default(content):
                response["content"] = _error_content()
        elif EVENT_STREAM in content:
            response["content"] = {
                EVENT_STREAM: {"schema": {"type": "string", "description": "Server-Sent Events (`event:`, `data:`)"}}
            }


def _is_fastapi_default(content: dict[str, Any]) -> bool:
    """Not JSON (FastAPI gives an SSE route's errors its media type), or FastAPI's own validation
    schema: Sage's error body is what is sent. A route's own JSON error model is kept."""
    if "application/json" not in content:
        return True
    return str(content["application/json"].get("schema", {}).get("$ref", "")).endswith("/HTTPValidationError")
