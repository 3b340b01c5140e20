"""How an answer ended, as the stream's terminal event and as the stored message's metadata.

Both are built from one `AnswerRecord`, and the terminal event is stored inside the
metadata, so a reconnect after the answer was saved replays exactly what the live stream
sent.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from sage.chat.providers.base import Usage
from sage.chat.sse import DONE, ERROR

CANCEL_MESSAGES = {
    "client_disconnected": "The client disconnected; the partial answer was saved.",
    "server_shutdown": "The server restarted while answering; the partial answer was saved.",
    "chat_deleted": "The chat was deleted while answering.",
}


@dataclass
class Outcome:
    status: str  # complete | incomplete | stopped | error
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    stop_reason: str | None = None

    @property
    def failed(self) -> bool:
        return self.code is not None and self.status != "complete"


@dataclass
class AnswerRecord:
    message_id: uuid.UUID
    outcome: Outcome
    provider: str
    model: str
    offline: bool
    cached: bool
    usage: Usage
    latency_ms: dict[str, Any]
    grounding: dict[str, Any]
    unverified_claims: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    cached_from: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)  # the `tool` events of the answer, with their seq

    def terminal(self) -> tuple[str, dict[str, Any]]:
        """The `done` or `error` event that ends the stream."""
        outcome = self.outcome
        common: dict[str, Any] = {"message_id": str(self.message_id), "status": outcome.status}
        if outcome.failed:
            data = {**common, "code": outcome.code, "message": outcome.message}
            if outcome.retry_after is not None:
                data["retry_after"] = outcome.retry_after
            return ERROR, data
        return DONE, {
            **common,
            "stop_reason": outcome.stop_reason,
            "cached": self.cached,
            "offline": self.offline,
            "provider": self.provider,
            "model": self.model,
            "usage": self.usage.as_dict(),
            "latency_ms": self.latency_ms,
            "grounding": {**self.grounding, "unverified_claims": self.unverified_claims},
            "unverified": self.unverified_claims,  # spans the UI underlines (same as the stored column)
        }

    def metadata(self) -> dict[str, Any]:
        """What is stored with the assistant message (JSONB `metadata`)."""
        event, data = self.terminal()
        meta: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "offline": self.offline,
            "cached": self.cached,
            "usage": self.usage.as_dict(),
            "latency_ms": self.latency_ms,
            "stop_reason": self.outcome.stop_reason,
            "grounding": self.grounding,
            "unverified_claims": self.unverified_claims,
            "context": self.context,
            "terminal": {"event": event, "data": data},
        }
        if self.tools:
            meta["tools"] = self.tools
        if self.outcome.failed:
            meta["error"] = {"code": self.outcome.code, "message": self.outcome.message}
        if self.cached_from is not None:
            meta["cached_from"] = self.cached_from
        return meta


def opaque_user_id(user_id: uuid.UUID) -> str:
    """What the model provider sees of a user: stable, not reversible to our id."""
    return hashlib.sha256(b"sage-user:" + user_id.bytes).hexdigest()[:32]
