"""Sentry: error reports and a 10 % sample of traces, with secrets scrubbed before sending.

Off unless SENTRY_DSN is set. `before_send` (and its twin for transactions) walks the
whole event: values under keys that name a secret (password, token, API key, cookie,
authorization, email, ...) are replaced, and free text (exception messages, query
strings, log breadcrumbs, local variables) is searched for e-mail addresses, bearer
tokens, JWTs, API keys, URL credentials and `key=value` secrets. Request bodies are
never attached.

The asyncio integration patches the running event loop, so it is enabled from the
runtime hook (inside the loop), not at init time.

sentry-sdk is imported only when a DSN is set (about 3.5 MB of an idle process otherwise);
the rest of Sage reports errors through `capture_exception` here, never the SDK directly.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sage.settings import Settings

log = logging.getLogger(__name__)

FILTERED = "[Filtered]"
SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|apikey|auth|cookie|session|csrf|jwt|dsn|"
    r"credential|private|signature|webhook|e-?mail",
    re.IGNORECASE,
)
_TEXT_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # key=value / "key": "value" pairs whose key names a secret (query strings, reprs, messages)
    (
        re.compile(
            r"(?i)((?:pass(?:word|wd)?|secret|token|api[-_]?key|apikey|authorization|cookie|session|jwt|dsn|"
            r"credential|refresh_token|access_token)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]+)"
        ),
        r"\1" + FILTERED,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + FILTERED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{10,}"), "[api-key]"),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "[aws-key]"),
    (re.compile(r"(https?://[^/\s]*discord(?:app)?\.com/api/webhooks/)[^\s\"']+", re.IGNORECASE), r"\1" + FILTERED),
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@", re.IGNORECASE), r"\1" + FILTERED + "@"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
]
_KEEP_KEYS = frozenset({"type", "module", "function", "filename", "abs_path", "lineno", "colno", "in_app"})
_MAX_DEPTH = 30


def scrub_text(text: str) -> str:
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return FILTERED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key not in _KEEP_KEYS and SENSITIVE_KEY.search(key):
                out[key] = FILTERED
            else:
                out[key] = _scrub(item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_scrub(item, depth + 1) for item in value]
    return value


def _scrub_headers(headers: Any) -> Any:
    """Header lists come as [[name, value], ...] or a dict."""
    if isinstance(headers, Mapping):
        return {k: (FILTERED if SENSITIVE_KEY.search(str(k)) else scrub_text(str(v))) for k, v in headers.items()}
    if isinstance(headers, list):
        out = []
        for pair in headers:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                name, val = pair
                out.append([name, FILTERED if SENSITIVE_KEY.search(str(name)) else scrub_text(str(val))])
        return out
    return headers


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """`before_send`: the event with every secret replaced. Never raises (a failure drops the event)."""
    try:
        request = event.get("request")
        if isinstance(request, dict):
            request.pop("cookies", None)
            request.pop("data", None)
            if "headers" in request:
                request["headers"] = _scrub_headers(request["headers"])
        user = event.get("user")
        if isinstance(user, dict):
            event["user"] = {k: v for k, v in user.items() if k == "id"}
        return _scrub(event)  # type: ignore[no-any-return]
    except Exception:
        log.warning("sentry scrubbing failed; event dropped")
        return {}


def _before_send(event: Any, hint: dict[str, Any]) -> Any:
    scrubbed = scrub_event(event, hint)
    return scrubbed or None


def _before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    return _scrub(crumb)  # type: ignore[no-any-return]


def init_sentry(settings: Settings) -> bool:
    """Initialise sentry-sdk from settings; False (and nothing done) when SENTRY_DSN is unset."""
    dsn = settings.secret_value("sentry_dsn")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.asyncio import AsyncioIntegration
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    integrations: list[Any] = [
        StarletteIntegration(),
        FastApiIntegration(),
        SqlalchemyIntegration(),
        LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
    ]
    try:
        asyncio.get_running_loop()
        integrations.append(AsyncioIntegration())
    except RuntimeError:
        pass  # enabled later by enable_asyncio(), from inside the loop
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.env.value,
        release=settings.release,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        max_request_body_size="never",
        include_local_variables=True,
        integrations=integrations,
        before_send=_before_send,
        before_send_transaction=_before_send,
        before_breadcrumb=_before_breadcrumb,
    )
    return True


def enable_asyncio() -> None:
    """Instrument the running loop's tasks (no-op when Sentry is off or already patched)."""
    sdk = sys.modules.get("sentry_sdk")  # not imported: never initialised
    if sdk is not None and sdk.get_client().is_active():
        from sentry_sdk.integrations.asyncio import enable_asyncio_integration

        enable_asyncio_integration()


def capture_exception(exc: BaseException) -> None:
    """Report an exception to Sentry when it is on; nothing (and no import) when it is off."""
    sdk = sys.modules.get("sentry_sdk")
    if sdk is not None:
        sdk.capture_exception(exc)
