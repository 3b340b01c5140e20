"""create_app(): wiring and lifespan only; no business logic here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from sage import __version__
from sage.api.body_limit import BodyLimitMiddleware, body_caps
from sage.api.errors import install_error_handlers
from sage.api.frontend import mount_frontend
from sage.api.middleware import OriginCORSMiddleware, RequestContextMiddleware
from sage.api.openapi import install_openapi
from sage.api.router import include_api
from sage.api.routes import health
from sage.api.routes import metrics as metrics_route
from sage.api.routes.market import MarketStreamFastPath
from sage.api.sse import StreamDrain, StreamingApp
from sage.market.reader import MarketReader
from sage.observability.metrics import Metrics
from sage.observability.setup import configure_observability
from sage.runtime import Runtime
from sage.serving import settle_heap, streams_end_on_sigterm
from sage.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None, *, metrics: Metrics | None = None, market_reader: MarketReader | None = None
) -> FastAPI:
    """The app; the composition root (`Runtime.start`) builds its services in the lifespan.
    `market_reader` substitutes the source of prices (tests that bring their own)."""
    settings = settings or load_settings()
    settings.check_production()
    metrics = metrics or Metrics()
    exporters = configure_observability(settings, metrics, service="api")  # Sentry before the app is built

    drain = StreamDrain()  # ends every open event stream when shutdown begins

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            runtime = await Runtime.start(settings, stack, metrics=metrics, market_reader=market_reader)
            app.state.runtime = runtime
            drain.on_start(runtime.services.chat.hand_over)
            settle_heap()
            with streams_end_on_sigterm(drain):
                yield

    app = StreamingApp(  # a FastAPI that lets event streams write below the middleware
        title="Sage.ai",
        version=__version__,
        description="AI assistant for crypto-market investors, grounded in live market data.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        # FastAPI's native OpenTelemetry instrumentation: Sage exports its own metrics and logs
        # (sage.observability) and configures no OpenTelemetry provider, so it would only look
        # the providers up on every request (three registry reads, os.environ included) to
        # find them unconfigured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.stream_drain = drain
    app.state.metrics = metrics
    app.state.prometheus = exporters.prometheus
    install_error_handlers(app)
    install_openapi(app)
    # Liveness and /metrics straight in the app's own route list, ahead of FastAPI's docs routes,
    # not as included routers: the load balancer and the container check hit /health all the
    # time, and each included-router level is matching work on every request. Neither router
    # has a prefix or router-level dependencies, so their routes are the same either way.
    app.router.routes[:0] = [*health.router.routes, *metrics_route.router.routes]
    include_api(app)
    # Innermost: /market/stream answered below the middleware below, without FastAPI's routing
    # and dependency layers (they would stay alive per open stream); see MarketStreamFastPath.
    app.add_middleware(MarketStreamFastPath)
    # Innermost of the three: a 413 still gets CORS headers and the request id.
    app.add_middleware(BodyLimitMiddleware, default_max_bytes=settings.max_body_bytes, caps=body_caps(settings))
    app.add_middleware(
        OriginCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    # Last: the web app at "/" (so the embedded default shows it on port 3000) must never
    # shadow a route; a missing file is the usual JSON 404.
    mount_frontend(app, settings.frontend_dir)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory sage.app:app_from_env` (used by `sage serve`)."""
    from sage.observability.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings)
