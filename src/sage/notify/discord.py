"""Alerts rendered as Discord embeds in the spec's format (9.3), as pure functions.

Title with the channel's severity, the channel's colour, and the fields Error (errors
channel) / Service / Environment / Timestamp / Sentry Link. Every limit is enforced by
`discord_limits`, so nothing here can produce a payload Discord would refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sage.notify.channels import Alert, Channel
from sage.notify.discord_limits import (
    FIELD_VALUE_LIMIT,
    RESOLVED_STYLE,
    Style,
    build_message,
    text_length,
)

SHORT_FIELD = 40  # values up to this many characters sit side by side (inline)


@dataclass(frozen=True)
class Origin:
    """Who is speaking: shown in every embed."""

    service: str = "api"
    environment: str = "development"
    release: str = "dev"


def style_of(channel: Channel, alert: Alert) -> Style:
    return RESOLVED_STYLE if alert.resolved else channel.style


def alert_embed(channel: Channel, alert: Alert, origin: Origin) -> dict[str, Any]:
    style = style_of(channel, alert)
    fields: list[dict[str, Any]] = []
    embed: dict[str, Any] = {
        "title": f"{style.label} {alert.title}",
        "color": style.colour,
        "timestamp": alert.timestamp.isoformat(),
        "footer": {"text": f"Sage {origin.service} · release {origin.release}"},
    }
    if channel is Channel.ERRORS and not alert.resolved:
        fields.append({"name": "Error", "value": alert.message, "inline": False})
        if text_length(alert.message) > FIELD_VALUE_LIMIT:
            embed["description"] = alert.message
    else:
        embed["description"] = alert.message
    for name, value in alert.fields.items():
        text = str(value)
        fields.append({"name": str(name), "value": text, "inline": text_length(text) <= SHORT_FIELD})
    fields.append({"name": "Service", "value": f"sage-{origin.service}", "inline": True})
    fields.append({"name": "Environment", "value": origin.environment, "inline": True})
    fields.append({"name": "Timestamp", "value": alert.timestamp.isoformat(timespec="seconds"), "inline": False})
    if alert.link:
        fields.append(
            {"name": "Sentry Link" if channel is Channel.ERRORS else "Link", "value": alert.link, "inline": False}
        )
        embed["url"] = alert.link
    embed["fields"] = fields
    return embed


def alert_content(channel: Channel, alerts: Sequence[Alert]) -> str:
    """The message text (what a phone notification shows)."""
    if len(alerts) == 1:
        return f"{style_of(channel, alerts[0]).label} {alerts[0].title}"
    titles = " · ".join(a.title for a in alerts)
    return f"{channel.style.label} {len(alerts)} alerts: {titles}"


def alerts_message(channel: Channel, alerts: Sequence[Alert], origin: Origin) -> dict[str, Any]:
    """One webhook payload for up to ten alerts (the caller packs them; limits hold regardless)."""
    return build_message(alert_content(channel, alerts), [alert_embed(channel, a, origin) for a in alerts])


def repeated_alert(alert: Alert, count: int, window_seconds: float) -> Alert:
    """The one message that stands for `count` repeats of `alert` within the window."""
    noun = "time" if count == 1 else "times"
    return Alert(
        title=alert.title,
        message=f"Repeated {count} {noun} in the last {window_seconds:g} s. Latest:\n{alert.message}",
        fields={**alert.fields, "Repeats": str(count)},
        dedupe_key=alert.dedupe_key,
        link=alert.link,
        resolved=alert.resolved,
        timestamp=alert.timestamp,
    )
