"""uvicorn options for `sage serve`, in one place so tests run the server exactly as production does."""

from __future__ import annotations

from typing import Any

from sage.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    behind_proxy = settings.trusted_proxy_hops > 0
    return {
        "proxy_headers": behind_proxy,
        "forwarded_allow_ips": "*" if behind_proxy else None,
        # On SIGTERM uvicorn stops accepting connections and lets in-flight requests finish for up
        # to this long: the ALB's deregistration delay (30 s), so no request is cut off mid-deploy.
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
        "timeout_keep_alive": 75,  # longer than the ALB's idle timeout (60 s), as AWS advises
        "access_log": False,
        "log_config": None,
        "server_header": False,
    }
