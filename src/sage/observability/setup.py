"""Wiring of the exporters (Sentry, EMF, Prometheus), one function for every process:
`create_app` calls it with service "api" before the app is built (Sentry must see it), and
the CLI's commands (`sage ingest`, `sage migrate`, `sage backup`, ...) through
`cli.start_observability_for` with their own service name, so every process exports the same
metrics the same way."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sage.observability.emf import EmfSink
from sage.observability.metrics import Metrics
from sage.observability.prometheus import PrometheusSink
from sage.observability.sentry import init_sentry
from sage.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exporters:
    emf: EmfSink | None
    prometheus: PrometheusSink | None
    sentry: bool


def prometheus_exposed(settings: Settings) -> bool:
    """/metrics is served in development, and in production only behind SAGE_METRICS_TOKEN."""
    if not settings.metrics_prometheus:
        return False
    return not settings.is_production or bool(settings.secret_value("metrics_token"))


def configure_metrics(
    settings: Settings, metrics: Metrics, *, service: str
) -> tuple[EmfSink | None, PrometheusSink | None]:
    """Attach the EMF and Prometheus sinks the settings ask for (once per registry)."""
    emf = next((s for s in metrics.sinks if isinstance(s, EmfSink)), None)
    if emf is None and settings.metrics_emf:
        emf = EmfSink(service=service, environment=settings.env.value, flush_interval=settings.metrics_flush_seconds)
        metrics.add_sink(emf)
        emf.start()
    prometheus = next((s for s in metrics.sinks if isinstance(s, PrometheusSink)), None)
    if prometheus is None and prometheus_exposed(settings):
        prometheus = PrometheusSink()
        metrics.add_sink(prometheus)
    elif settings.metrics_prometheus and not prometheus_exposed(settings):
        log.warning("SAGE_METRICS_PROMETHEUS is on but SAGE_METRICS_TOKEN is unset; /metrics stays off in production")
    return emf, prometheus


def configure_observability(settings: Settings, metrics: Metrics, *, service: str = "api") -> Exporters:
    """Sentry first (it must see the app being built), then the metric sinks."""
    sentry = init_sentry(settings)
    emf, prometheus = configure_metrics(settings, metrics, service=service)
    return Exporters(emf=emf, prometheus=prometheus, sentry=sentry)
