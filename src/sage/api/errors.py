"""Every error leaves as JSON: {"error": {"code", "message", "details"}}.

Unhandled exceptions are turned into a 500 by RequestContextMiddleware (so the response
carries the request id): no stack trace, no exception text (it may hold SQL, URLs or
secrets). The full error goes to the log and to Sentry with the same request id.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from sage.errors import SageError
from sage.observability.sentry import capture_exception

log = logging.getLogger("sage.api")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


async def _sage_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SageError)
    return JSONResponse(
        error_body(exc.code, exc.message, jsonable_encoder(exc.details)),
        status_code=exc.status,
        headers=exc.headers,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").capitalize()
    if exc.status_code == 404 and message == "Not Found":
        message = f"No route for {request.method} {request.url.path}"
    headers = exc.headers
    if exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path. Starlette's own 405 names only the first
    route that matched the path, though several routes (GET, PATCH, DELETE) may share it."""
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        for route in request.app.router.routes:
            if isinstance(route, Mount):
                continue  # the web app mounted at "/" would claim every GET
            if route.matches(probe)[0] is Match.FULL:
                allowed.append(method)
                break
    return allowed


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        details.append(
            {
                "field": ".".join(loc[1:] if len(loc) > 1 else loc),
                "in": loc[0] if loc else None,
                "message": err.get("msg", "invalid"),
                "type": err.get("type"),
            }
        )
    fields = ", ".join(d["field"] or "body" for d in details)
    return JSONResponse(error_body("validation_error", f"Invalid request: {fields}", details), status_code=422)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Pool exhausted or database unreachable: a retryable 503, not a 500 (nothing is wrong with
    the request). The exception text is not echoed: it can name hosts and users."""
    log.warning("database unavailable", extra={"error": type(exc).__name__, "path": request.url.path})
    return JSONResponse(
        error_body("database_unavailable", "The database is temporarily unavailable; retry shortly"),
        status_code=503,
        headers={"Retry-After": "2"},
    )


# SQLSTATEs that say "the connection or the server is going or gone", not "your query is wrong":
# class 08 (connection exception), 57P01..03 (admin/crash shutdown, "the database system is
# shutting down"/"starting up"), 53300 (too many connections).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_connection_failure(exc: BaseException) -> bool:
    """True when `exc`, or anything it wraps (SQLAlchemy's `orig`, `__cause__`, `__context__`),
    is a connection-level failure: the request may succeed on retry, so it is a 503, not a 500."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (InterfaceError, SQLAlchemyTimeoutError, asyncpg.InterfaceError)):
            return True
        if isinstance(current, (ConnectionError, TimeoutError)):  # refused / reset / connect timeout
            return True
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES):
            return True
        orig = getattr(current, "orig", None)
        stack.extend([orig if isinstance(orig, BaseException) else None, current.__cause__, current.__context__])
    return False


async def _timed_out(request: Request, exc: Exception) -> JSONResponse:
    """A dependency (most often the database's connect timeout) did not answer in time."""
    log.warning("dependency timed out", extra={"error": type(exc).__name__, "path": request.url.path})
    return JSONResponse(
        error_body("unavailable", "A service Sage depends on did not answer in time; retry shortly"),
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    if is_connection_failure(exc):
        return await _database_unavailable(request, exc)
    request_id = request.scope.get("state", {}).get("request_id")
    log.error("database error", exc_info=exc, extra={"path": request.url.path})
    capture_exception(exc)
    return JSONResponse(
        error_body("internal_error", "Internal server error", {"request_id": request_id}), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SageError, _sage_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SQLAlchemyTimeoutError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_exception_handler(TimeoutError, _timed_out)  # e.g. asyncpg's connect timeout, unwrapped
    app.add_exception_handler(DBAPIError, _dbapi_error)
    # asyncpg errors that reach us unwrapped (raised while a pooled connection is being set up)
    app.add_exception_handler(asyncpg.PostgresError, _dbapi_error)
    app.add_exception_handler(asyncpg.InterfaceError, _dbapi_error)
