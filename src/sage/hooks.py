"""Domain start-up hooks, imported by the runtime. One import per domain: each module
appends its hook to sage.runtime.START_HOOKS when imported."""

from __future__ import annotations

import sage.alerts.hooks
import sage.chat.hooks
import sage.market.hooks
import sage.observability.service
import sage.portfolio.hooks  # noqa: F401
