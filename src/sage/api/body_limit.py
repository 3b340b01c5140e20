"""Request-body size limits, enforced before anything reads the body (pure ASGI).

A body larger than its route's cap is refused with 413 and Sage's JSON error body:
- at once, from `Content-Length`, without reading a byte of it; and
- for a body without a length (chunked), as soon as the bytes received pass the cap: the
  count is kept in `receive()`, so at most one chunk beyond the cap is ever held, and the
  server stops reading (it closes the connection once the 413 is sent).
Either way it happens before authentication (a dependency, run after the body is read) and
before any route code, so unauthenticated 50 MB bodies cost nothing.

Caps: SAGE_MAX_BODY_BYTES for every route, except those matched by `UPLOAD_ROUTES`, which get
SAGE_MAX_UPLOAD_BYTES. A route that takes an upload adds its path pattern there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sage.api.errors import error_body
from sage.settings import Settings

# Path patterns of routes that accept uploads (SAGE_MAX_UPLOAD_BYTES instead of SAGE_MAX_BODY_BYTES).
UPLOAD_ROUTES: tuple[str, ...] = (
    r"/api/v1/portfolios/[^/]+/import",  # CSV import of transactions
)


@dataclass(frozen=True)
class BodyCap:
    pattern: re.Pattern[str]
    max_bytes: int


def body_caps(settings: Settings) -> list[BodyCap]:
    return [BodyCap(re.compile(f"^{pattern}$"), settings.max_upload_bytes) for pattern in UPLOAD_ROUTES]


class BodyTooLarge(HTTPException):
    """Raised from `receive()` when a streamed body passes the cap. An HTTPException, so the
    app's handlers answer it as a JSON 413 even where a route wraps body errors."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, default_max_bytes: int, caps: Sequence[BodyCap] = ()) -> None:
        self.app = app
        self.default_max_bytes = default_max_bytes
        self.caps = list(caps)

    def limit_for(self, path: str) -> int:
        for cap in self.caps:
            if cap.pattern.match(path):
                return cap.max_bytes
        return self.default_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared, chunked = _framing(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)  # the body is never read
            return
        if not chunked:
            # No body, or one whose declared length fits: the server never delivers more
            # bytes than Content-Length, so there is nothing to count (and no wrapper to pay
            # for on every GET).
            await self.app(scope, receive, send)
            return
        received = 0
        started = exceeded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if exceeded:  # the rest of the body stays unread: the connection cannot be reused
                    message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send, limit)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """(declared Content-Length, whether the body is chunked) from the raw request headers."""
    declared: int | None = None
    chunked = False
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None  # the server rejects a malformed length itself
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps(error_body("payload_too_large", f"Request body is larger than {limit} bytes"))
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
