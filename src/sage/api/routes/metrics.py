"""GET /metrics: Prometheus exposition for local use.

Off (404) when not exposed: in production it exists only with SAGE_METRICS_TOKEN, and a
token, wherever it is set, must come as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sage.errors import NotFound, Unauthorized
from sage.observability.prometheus import CONTENT_TYPE, PrometheusSink
from sage.observability.setup import prometheus_exposed
from sage.settings import Settings

router = APIRouter(tags=["observability"])


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    sink: PrometheusSink | None = getattr(request.app.state, "prometheus", None)
    if sink is None or not prometheus_exposed(settings):
        raise NotFound("Metrics are not exposed here")
    token = settings.secret_value("metrics_token")
    if token:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("A valid metrics token is required")
    return Response(content=sink.render(), media_type=CONTENT_TYPE)
