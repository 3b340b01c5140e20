"""A local Discord webhook server for tests (127.0.0.1, stdlib http.server in a thread).

It speaks the webhook protocol the notifier and the alarm router rely on:
POST /api/webhooks/<id>/<token>[?wait=true] -> 204 (or 200 with the message when wait=true);
429 with a JSON `retry_after` (seconds, float) plus Retry-After and X-RateLimit-* headers
when the per-webhook bucket is exhausted; 400 with Discord's "Invalid Form Body" when a
payload breaks one of Discord's limits (checked here independently of the code under
test); 404 "Unknown Webhook" for a removed webhook; scripted 5xx, 429 and slow answers.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PATH = re.compile(r"^/api/webhooks/(?P<id>[^/]+)/(?P<token>[^/?]+)$")
_PING = re.compile(r"@everyone|@here|<@[!&]?\d+>")


def units(text: str) -> int:
    """Discord's length, counted the strict way (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def discord_problems(payload: Any) -> list[str]:
    """Every way `payload` breaks Discord's documented webhook limits."""
    problems: list[str] = []
    if not isinstance(payload, dict):
        return ["body is not a JSON object"]
    content = payload.get("content")
    if content is not None:
        if not isinstance(content, str):
            problems.append("content is not a string")
        elif units(content) > 2000:
            problems.append(f"content has {units(content)} > 2000 characters")
    embeds = payload.get("embeds") or []
    if not isinstance(embeds, list):
        return [*problems, "embeds is not a list"]
    if len(embeds) > 10:
        problems.append(f"{len(embeds)} > 10 embeds")
    total = 0
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            problems.append(f"embed {i} is not an object")
            continue
        text = 0
        for key, limit in (("title", 256), ("description", 4096)):
            value = embed.get(key)
            if value is not None:
                if not isinstance(value, str):
                    problems.append(f"embed {i} {key} is not a string")
                    continue
                if units(value) > limit:
                    problems.append(f"embed {i} {key} has {units(value)} > {limit}")
                text += units(value)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append(f"embed {i} has {len(fields)} > 25 fields")
        for j, item in enumerate(fields):
            name, value = item.get("name"), item.get("value")
            if not isinstance(name, str) or not name.strip():
                problems.append(f"embed {i} field {j} name is empty")
            elif units(name) > 256:
                problems.append(f"embed {i} field {j} name has {units(name)} > 256")
            if not isinstance(value, str) or not value.strip():
                problems.append(f"embed {i} field {j} value is empty")
            elif units(value) > 1024:
                problems.append(f"embed {i} field {j} value has {units(value)} > 1024")
            text += units(name or "") + units(value or "")
        footer = (embed.get("footer") or {}).get("text", "")
        if units(footer) > 2048:
            problems.append(f"embed {i} footer has {units(footer)} > 2048")
        author = (embed.get("author") or {}).get("name", "")
        if units(author) > 256:
            problems.append(f"embed {i} author has {units(author)} > 256")
        text += units(footer) + units(author)
        if text == 0:
            problems.append(f"embed {i} is empty")
        colour = embed.get("color")
        if colour is not None and (not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF):
            problems.append(f"embed {i} color {colour!r} is invalid")
        url = embed.get("url")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            problems.append(f"embed {i} url is not a well formed URL")
        total += text
    if total > 6000:
        problems.append(f"embeds total {total} > 6000 characters")
    if not (isinstance(content, str) and content.strip()) and not embeds:
        problems.append("cannot send an empty message")
    return problems


def would_ping(payload: dict[str, Any]) -> bool:
    """Whether Discord would notify anyone: mentions parse unless allowed_mentions says otherwise."""
    content = payload.get("content") or ""
    if not _PING.search(content):
        return False
    allowed = payload.get("allowed_mentions")
    silenced = isinstance(allowed, dict) and allowed.get("parse") == []
    return not (silenced and not allowed.get("users") and not allowed.get("roles"))


@dataclass
class Hook:
    gone: bool = False
    script: deque[tuple[str, float]] = field(default_factory=deque)  # ("status", 503) / ("429", s) / ("slow", s)
    bucket_limit: int | None = None
    bucket_window: float = 1.0
    bucket_started: float = 0.0
    bucket_used: int = 0


@dataclass
class Seen:
    hook: str
    status: int
    payload: Any
    at: float
    wait: bool


class FakeDiscord:
    def __init__(self) -> None:
        self.hooks: dict[str, Hook] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # -- setup ----------------------------------------------------------------------------------
    def start(self) -> FakeDiscord:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                fake._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, hook: str, *, wait: bool = False, token: str = "t0ken-SECRET") -> str:
        self.hooks.setdefault(hook, Hook())
        return f"http://127.0.0.1:{self.port}/api/webhooks/{hook}/{token}" + ("?wait=true" if wait else "")

    def script(self, hook: str, *steps: tuple[str, float]) -> None:
        self.hooks.setdefault(hook, Hook()).script.extend(steps)

    def rate_limit(self, hook: str, limit: int, window: float) -> None:
        h = self.hooks.setdefault(hook, Hook())
        h.bucket_limit, h.bucket_window = limit, window

    def remove(self, hook: str) -> None:
        self.hooks.setdefault(hook, Hook()).gone = True

    # -- reading --------------------------------------------------------------------------------
    def accepted(self, hook: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [s.payload for s in self.seen if s.status in (200, 204) and (hook is None or s.hook == hook)]

    def embeds(self, hook: str | None = None) -> list[dict[str, Any]]:
        return [e for p in self.accepted(hook) for e in p.get("embeds", [])]

    def statuses(self, hook: str | None = None) -> list[int]:
        with self.lock:
            return [s.status for s in self.seen if hook is None or s.hook == hook]

    # -- protocol -------------------------------------------------------------------------------
    def _reply(
        self, handler: BaseHTTPRequestHandler, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        if data:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if data:
            handler.wfile.write(data)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        match = _PATH.match(parts.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        wait = parse_qs(parts.query).get("wait", ["false"])[0] == "true"
        if match is None:
            self._reply(handler, 404, {"message": "404: Not Found", "code": 0})
            return
        hook_id = match.group("id")
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        status, body, headers, delay = self._decide(hook_id, payload, wait)
        with self.lock:
            self.seen.append(Seen(hook_id, status, payload, time.monotonic(), wait))
        if delay:
            time.sleep(delay)
        try:
            self._reply(handler, status, body, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _decide(self, hook_id: str, payload: Any, wait: bool) -> tuple[int, Any, dict[str, str], float]:
        with self.lock:
            hook = self.hooks.get(hook_id)
            if hook is None or hook.gone:
                return 404, {"message": "Unknown Webhook", "code": 10015}, {}, 0.0
            if hook.script:
                kind, value = hook.script.popleft()
                if kind == "status":
                    return int(value), {"message": "Server error", "code": 0}, {}, 0.0
                if kind == "429":
                    return (
                        429,
                        {"message": "You are being rate limited.", "retry_after": value, "global": False},
                        {
                            "Retry-After": str(math.ceil(value)),
                            "X-RateLimit-Limit": "5",
                            "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset-After": f"{value:.3f}",
                            "X-RateLimit-Scope": "user",
                        },
                        0.0,
                    )
                if kind == "slow":
                    return 204, None, {}, value
            problems = discord_problems(payload)
            if problems:
                return 400, {"code": 50035, "message": "Invalid Form Body", "errors": problems}, {}, 0.0
            headers: dict[str, str] = {}
            if hook.bucket_limit is not None:
                now = time.monotonic()
                if now - hook.bucket_started >= hook.bucket_window:
                    hook.bucket_started, hook.bucket_used = now, 0
                # Rounded up, as a client that waits exactly this long must find a fresh bucket.
                reset_after = math.ceil((hook.bucket_window - (now - hook.bucket_started)) * 1000) / 1000
                if hook.bucket_used >= hook.bucket_limit:
                    return (
                        429,
                        {
                            "message": "You are being rate limited.",
                            "retry_after": round(reset_after, 3),
                            "global": False,
                        },
                        {
                            "Retry-After": str(math.ceil(reset_after)),
                            "X-RateLimit-Limit": str(hook.bucket_limit),
                            "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                            "X-RateLimit-Bucket": f"bucket-{hook_id}",
                        },
                        0.0,
                    )
                hook.bucket_used += 1
                headers = {
                    "X-RateLimit-Limit": str(hook.bucket_limit),
                    "X-RateLimit-Remaining": str(hook.bucket_limit - hook.bucket_used),
                    "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                    "X-RateLimit-Bucket": f"bucket-{hook_id}",
                }
            if wait:
                message = {"id": str(len(self.seen) + 1), "channel_id": hook_id, **payload}
                return 200, message, headers, 0.0
            return 204, None, headers, 0.0
