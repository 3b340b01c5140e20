"""Discord webhook rules, shared by the app's notifier and the alarm-router Lambda.

Standard library only: the infra program packs this very file into the alarm-router
Lambda as its top-level module `discord_limits` (infra/sage_infra/router_package.py), so
keep it free of imports from `sage`.

Everything here is a pure function. Limits are enforced by truncation, never by a 400
from Discord. Lengths are counted in UTF-16 code units, which is never less than the
count in code points, so a message that passes here passes either way of counting.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CONTENT_LIMIT = 2000
EMBEDS_LIMIT = 10
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256
MESSAGE_TOTAL_LIMIT = 6000  # title + description + field names/values + footer + author, all embeds
URL_LIMIT = 2000

ELLIPSIS = "…"
EMPTY = "-"  # Discord rejects empty or blank field names and values
USER_AGENT = "DiscordBot (https://github.com/sage-ai/sage, 1.0) sage-notifier"
NO_MENTIONS: dict[str, list[str]] = {"parse": []}

ZWSP = "\u200b"
_MENTION = re.compile(r"@(everyone|here)|<@([!&]?)(\d+)>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Style:
    label: str
    colour: int


# The spec's three channels (9.3) and their severities.
CHANNEL_STYLES: dict[str, Style] = {
    "errors": Style("🔴 CRITICAL", 0xFF0000),
    "performance": Style("🟠 WARNING", 0xFFA500),
    "business": Style("🟢 INFO", 0x00FF00),
}
RESOLVED_STYLE = Style("✅ RESOLVED", 0x2ECC71)
NO_DATA_STYLE = Style("⚪ INSUFFICIENT DATA", 0x95A5A6)


# -- text ---------------------------------------------------------------------------------------
def text_length(text: str) -> int:
    """Length in UTF-16 code units (astral characters count twice)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clean_text(value: object) -> str:
    """A str safe to JSON-encode for Discord: no lone surrogates, no control characters."""
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text)


def truncate(text: str, limit: int) -> str:
    """At most `limit` UTF-16 units; an ellipsis marks a cut."""
    if limit <= 0:
        return ""
    if text_length(text) <= limit:
        return text
    budget = limit - 1  # the ellipsis is one unit
    out: list[str] = []
    used = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > budget:
            break
        out.append(ch)
        used += width
    return "".join(out) + ELLIPSIS


def neutralise_mentions(text: str) -> str:
    """Break @everyone, @here and <@id> so they render as text even where mentions parse."""

    def breaker(match: re.Match[str]) -> str:
        if match.group(1):
            return "@" + ZWSP + match.group(1)
        return "<@" + ZWSP + match.group(2) + match.group(3) + ">"

    return _MENTION.sub(breaker, text)


def _non_empty(text: str) -> str:
    return text if text.strip() else EMPTY


# -- embeds and messages ------------------------------------------------------------------------
def embed_length(embed: Mapping[str, Any]) -> int:
    """The characters Discord counts towards the 6000 per message."""
    total = text_length(str(embed.get("title", ""))) + text_length(str(embed.get("description", "")))
    for item in embed.get("fields", []) or []:
        total += text_length(str(item.get("name", ""))) + text_length(str(item.get("value", "")))
    footer = embed.get("footer") or {}
    author = embed.get("author") or {}
    total += text_length(str(footer.get("text", ""))) + text_length(str(author.get("name", "")))
    return total


def _take(text: object, own_limit: int, budget: int) -> str:
    return truncate(clean_text(text), min(own_limit, budget))


def clamp_embed(embed: Mapping[str, Any], budget: int = MESSAGE_TOTAL_LIMIT) -> dict[str, Any]:
    """A copy of `embed` within every per-embed limit and within `budget` counted characters.

    Spending order when the budget is short: title, description, fields (in order), footer.
    Fields that cannot get at least one character of name and value are dropped.
    """
    out: dict[str, Any] = {}
    left = max(0, budget)
    title = _take(embed.get("title") or "", TITLE_LIMIT, left)
    if title.strip():
        out["title"] = title
        left -= text_length(title)
    description = _take(embed.get("description") or "", DESCRIPTION_LIMIT, left)
    if description.strip():
        out["description"] = description
        left -= text_length(description)
    fields: list[dict[str, Any]] = []
    for item in list(embed.get("fields") or [])[:FIELDS_LIMIT]:
        if left < 2:
            break
        name = _non_empty(_take(item.get("name", ""), FIELD_NAME_LIMIT, left - 1))
        left -= text_length(name)
        value = _non_empty(_take(item.get("value", ""), FIELD_VALUE_LIMIT, left))
        left -= text_length(value)
        fields.append({"name": name, "value": value, "inline": bool(item.get("inline", False))})
    if fields:
        out["fields"] = fields
    footer_text = _take((embed.get("footer") or {}).get("text", ""), FOOTER_LIMIT, left)
    if footer_text.strip():
        out["footer"] = {"text": footer_text}
        left -= text_length(footer_text)
    author_name = _take((embed.get("author") or {}).get("name", ""), AUTHOR_NAME_LIMIT, left)
    if author_name.strip():
        out["author"] = {"name": author_name}
    colour = embed.get("color")
    if isinstance(colour, int) and not isinstance(colour, bool):
        out["color"] = min(max(colour, 0), 0xFFFFFF)
    url = embed.get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= URL_LIMIT and " " not in url:
        out["url"] = url
    timestamp = embed.get("timestamp")
    if isinstance(timestamp, str) and timestamp:
        out["timestamp"] = timestamp
    return out


def _has_text(embed: Mapping[str, Any]) -> bool:
    return embed_length(embed) > 0


def build_message(content: str | None, embeds: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A webhook payload within every Discord limit; mentions never ping."""
    payload: dict[str, Any] = {"allowed_mentions": {"parse": []}}
    text = truncate(neutralise_mentions(clean_text(content or "")), CONTENT_LIMIT)
    if text.strip():
        payload["content"] = text
    left = MESSAGE_TOTAL_LIMIT
    clamped: list[dict[str, Any]] = []
    for embed in embeds:
        if len(clamped) == EMBEDS_LIMIT or left <= 0:
            break
        item = clamp_embed(embed, left)
        if _has_text(item):
            clamped.append(item)
            left -= embed_length(item)
    if clamped:
        payload["embeds"] = clamped
    if "content" not in payload and not clamped:
        payload["content"] = EMPTY  # Discord refuses an empty message
    return payload


def plain_text(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A content-only rendition of a payload: the fallback when Discord rejects the embeds."""
    lines: list[str] = []
    if payload.get("content"):
        lines.append(str(payload["content"]))
    for embed in payload.get("embeds", []) or []:
        if embed.get("title"):
            lines.append(f"**{embed['title']}**")
        if embed.get("description"):
            lines.append(str(embed["description"]))
        for item in embed.get("fields", []) or []:
            lines.append(f"{item.get('name', '')}: {item.get('value', '')}")
    return build_message("\n".join(lines))


# -- responses ----------------------------------------------------------------------------------
DELIVERED = "delivered"
RATE_LIMITED = "rate_limited"
RETRY = "retry"
DISABLED = "disabled"
REJECTED = "rejected"


@dataclass(frozen=True)
class Outcome:
    kind: str  # delivered | rate_limited | retry | disabled | rejected
    delay: float = 0.0  # seconds to wait before the next request to this webhook
    detail: str = ""


def _lower(headers: Any) -> dict[str, str]:
    try:
        items = headers.items()
    except AttributeError:
        return {}
    return {str(k).lower(): str(v) for k, v in items}


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return seconds


def bucket_delay(headers: Any) -> float:
    """After a success: wait out the bucket when Discord says no requests remain in it."""
    lowered = _lower(headers)
    if lowered.get("x-ratelimit-remaining", "").strip() == "0":
        return _seconds(lowered.get("x-ratelimit-reset-after")) or 0.0
    return 0.0


def _body_detail(body: bytes) -> str:
    text = body[:300].decode("utf-8", "replace")
    return " ".join(text.split())


def classify_response(status: int, headers: Any, body: bytes) -> Outcome:
    """What to do after Discord answered `status` (0 when no answer came: timeout, reset)."""
    lowered = _lower(headers)
    if 200 <= status < 300:
        return Outcome(DELIVERED, bucket_delay(lowered))
    if status == 429:
        delay: float | None = None
        try:
            data = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            delay = _seconds(data.get("retry_after"))
        if delay is None:
            delay = _seconds(lowered.get("retry-after"))
        if delay is None:
            delay = _seconds(lowered.get("x-ratelimit-reset-after"))
        scope = "global" if isinstance(data, dict) and data.get("global") else lowered.get("x-ratelimit-scope", "")
        return Outcome(RATE_LIMITED, 1.0 if delay is None else delay, f"429 {scope}".strip())
    if status in (401, 404):
        return Outcome(DISABLED, 0.0, f"{status} {_body_detail(body)}".strip())
    if status == 0 or status >= 500 or status == 408:
        return Outcome(RETRY, 0.0, f"{status} {_body_detail(body)}".strip() if status else "no response")
    return Outcome(REJECTED, 0.0, f"{status} {_body_detail(body)}".strip())


def backoff_delay(attempt: int, *, base: float = 1.0, cap: float = 30.0, jitter: float = 1.0) -> float:
    """Exponential backoff for attempt 1, 2, ...; `jitter` in [0, 1] scales the upper half."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return float(ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0))
