"""The spec's three Discord channels (9.3) and the alert every sender hands the notifier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sage.notify.discord_limits import CHANNEL_STYLES, Style


class Channel(StrEnum):
    ERRORS = "errors"  # 🔴 CRITICAL
    PERFORMANCE = "performance"  # 🟠 WARNING
    BUSINESS = "business"  # 🟢 INFO

    @property
    def style(self) -> Style:
        return CHANNEL_STYLES[self.value]

    @property
    def setting(self) -> str:
        """The Settings field holding this channel's webhook URL."""
        return f"discord_webhook_{self.value}"


@dataclass(frozen=True)
class Alert:
    """One notification. Alerts with the same `dedupe_key` (default: title + message) that
    arrive within the repeat window are grouped into one "Repeated N times" message."""

    title: str
    message: str
    fields: Mapping[str, str] = field(default_factory=dict)
    dedupe_key: str | None = None
    link: str | None = None  # e.g. the Sentry event; shown as "Sentry Link" on the errors channel
    resolved: bool = False  # a condition that cleared: rendered green, "✅ RESOLVED"
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def group_key(self) -> str:
        return self.dedupe_key if self.dedupe_key is not None else f"{self.title}\x00{self.message}"
