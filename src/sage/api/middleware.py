"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer SSE streams).

RequestContext: takes X-Request-ID when present and sane, else generates one; binds it
to every log line (structlog contextvars); sets it on the response; records request
latency per route template (StreamDuration for text/event-stream responses) and counts 5xx.
It also adds `Vary: Origin` to responses of requests without an `Origin` header, which
`OriginCORSMiddleware` lets through untouched: the one send wrapper every response passes
anyway carries it, instead of a second wrapper and header parsing in the CORS layer.

Every request pays for each layer (a coroutine per layer and per response message), so the
hot path does only what a feature needs: one scan of the raw request headers, no `Headers`
objects, metric dimensions built once per route.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any, NamedTuple

import orjson
import structlog
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sage.api.errors import error_body
from sage.observability.metrics import BoundMetric, Metrics
from sage.observability.sentry import capture_exception

log = logging.getLogger("sage.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_VARY_ORIGIN = (b"vary", b"Origin")
# The module's generator: seeded from os.urandom, and reseeded in a forked child, so workers
# never share a sequence.
_random_bits = random.getrandbits


def route_template(scope: Scope) -> str:
    """The matched route's full template (`/api/v1/chats/{chat_id}`), so metrics group by route,
    not by URL. FastAPI >= 0.16x nests included routers without copying them, so `scope["route"]`
    holds the path relative to its router; the effective context carries the full one."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return str(path) if path else "unmatched"


class _RouteInstruments(NamedTuple):
    """The request metrics of one (route template, method), bound once (`Metrics.bind`)."""

    latency: BoundMetric  # RequestLatency{route, method}
    stream: BoundMetric  # StreamDuration{route, method}
    requests: BoundMetric  # Requests{route}
    http_5xx: BoundMetric  # Http5xx{route}


_INSTRUMENTS_LIMIT = 1024
_LIVENESS_BODY = b'{"status":"ok"}'  # what `api/routes/health.health` answers
_LIVENESS_HEADERS = (
    (b"content-length", str(len(_LIVENESS_BODY)).encode()),
    (b"content-type", b"application/json"),
)  # routes x methods in use are few; clients may send any method name


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._instruments: dict[tuple[str, str], _RouteInstruments] = {}

    def _bind(self, route: str, method: str) -> _RouteInstruments:
        metrics = self.metrics
        instruments = _RouteInstruments(
            latency=metrics.bind("histogram", "RequestLatency", unit="Milliseconds", route=route, method=method),
            stream=metrics.bind("histogram", "StreamDuration", unit="Milliseconds", route=route, method=method),
            requests=metrics.bind("counter", "Requests", unit="Count", route=route),
            http_5xx=metrics.bind("counter", "Http5xx", unit="Count", route=route),
        )
        if len(self._instruments) < _INSTRUMENTS_LIMIT:
            self._instruments[(route, method)] = instruments
        return instruments

    async def _liveness(self, request_id: str, send: Send) -> None:
        """`GET /health` answered here, ahead of the framework: the load balancer and the
        container check ask it all the time and it calls nothing (`api/routes/health.py`, which
        stays the documented route and answers every other form of the request: with `Origin`,
        a body or another method). Same bytes and headers as the route's answer, the request
        id, and the same RequestLatency and Requests metrics; no access log, as for the route."""
        started = time.perf_counter()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_LIVENESS_HEADERS, (b"x-request-id", request_id.encode()), _VARY_ORIGIN],
            }
        )
        await send({"type": "http.response.body", "body": _LIVENESS_BODY})
        instruments = self._instruments.get(("/health", "GET")) or self._bind("/health", "GET")
        instruments.latency.record((time.perf_counter() - started) * 1000)
        instruments.requests.record()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        has_origin = False
        has_body = False
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"origin":
                has_origin = True
            elif name == b"content-length" or name == b"transfer-encoding":
                has_body = True
        # 32 random hex digits, as uuid4().hex was. A request id correlates log lines; it is
        # not a secret, so it comes from the process's PRNG, not a getrandom() call per request.
        request_id = incoming if _SANE_ID.match(incoming) else f"{_random_bits(128):032x}"
        if (
            scope["path"] == "/health"
            and scope["method"] == "GET"
            and not has_origin
            and not has_body
            and not scope.get("root_path")
        ):
            await self._liveness(request_id, send)
            return
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        streaming = False
        started_response = False
        request_id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            # One wrapper for every message of the response (a wrapper is a coroutine per send).
            nonlocal status, streaming, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                for name, value in headers:
                    if name.lower() == b"content-type":
                        streaming = value.startswith(b"text/event-stream")
                        break
                headers.append(request_id_header)
                if not has_origin:  # CORS answers depend on Origin: caches must key on it
                    headers.append(_VARY_ORIGIN)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Handled here, not by Starlette's ServerErrorMiddleware, so the 500 carries the
            # request id header and a JSON body with no internals.
            log.error("unhandled exception", exc_info=exc, extra={"path": scope.get("path")})
            capture_exception(exc)
            status = 500
            if not started_response:
                body = orjson.dumps(error_body("internal_error", "Internal server error", {"request_id": request_id}))
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            route = route_template(scope)
            method = scope.get("method", "")
            instruments = self._instruments.get((route, method)) or self._bind(route, method)
            # A stream's lifetime is not a response time: it would drown the API's P95 (an SSE chat
            # answer lasts seconds, a market stream hours). Streams are timed separately.
            (instruments.stream if streaming else instruments.latency).record(elapsed_ms)
            if status >= 500:
                instruments.http_5xx.record()
            instruments.requests.record()
            if route not in ("/health", "/metrics"):
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope.get("path"),
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed_ms, 2),
                    },
                )
            structlog.contextvars.unbind_contextvars("request_id")


class OriginCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware for requests that carry an `Origin` header (every
    cross-origin browser request does); the others pass straight through. Starlette would
    wrap their `send` and parse headers only to add `Vary: Origin`, which
    `RequestContextMiddleware` adds for them instead."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, _ in scope.get("headers", []):
                if name == b"origin":
                    break
            else:
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
