"""The aiResponse cache: the same question over the same context within 300 s (the spec's
TTL) is answered from Valkey, streamed chunk by chunk like a live answer, and spends no
tokens.

The key covers everything the answer depended on: the normalised question, the
context fingerprint (figures at the precision an answer states them, the portfolio), the
earlier turns of the conversation, and the provider and model. Only complete answers
whose every figure was verified are stored, so the cache never replays a hallucination.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sage.chat.providers.base import ChatTurn
from sage.store.cache import Cache

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?!.。？！]+$")


def normalize_question(text: str) -> str:
    return _TRAILING.sub("", _SPACE.sub(" ", text).strip().casefold())


@dataclass(frozen=True)
class CachedAnswer:
    chunks: list[str]
    provider: str
    model: str
    grounding: dict[str, Any]
    unverified_claims: list[dict[str, Any]] = field(default_factory=list)
    source_message_id: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def as_json(self) -> dict[str, Any]:
        return {
            "chunks": self.chunks,
            "provider": self.provider,
            "model": self.model,
            "grounding": self.grounding,
            "unverified_claims": self.unverified_claims,
            "source_message_id": self.source_message_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CachedAnswer:
        return cls(
            chunks=[str(c) for c in data.get("chunks", [])],
            provider=str(data.get("provider", "")),
            model=str(data.get("model", "")),
            grounding=dict(data.get("grounding") or {}),
            unverified_claims=list(data.get("unverified_claims") or []),
            source_message_id=data.get("source_message_id"),
        )


class AnswerCache:
    def __init__(self, cache: Cache, ttl: float) -> None:
        self.cache = cache
        self.ttl = ttl

    def key(self, *, question: str, fingerprint: str, history: Sequence[ChatTurn], provider: str, model: str) -> str:
        digest = hashlib.sha256()
        for part in (provider, model, fingerprint, normalize_question(question)):
            digest.update(part.encode())
            digest.update(b"\x00")
        for turn in history:
            digest.update(turn.role.encode() + b"\x01" + turn.content.encode() + b"\x00")
        return self.cache.key("ai", digest.hexdigest())

    async def get(self, key: str) -> CachedAnswer | None:
        data = await self.cache.get_json(key)
        if not isinstance(data, dict) or not data.get("chunks"):
            return None
        return CachedAnswer.from_json(data)

    async def put(self, key: str, answer: CachedAnswer) -> None:
        await self.cache.set_json(key, answer.as_json(), self.ttl)
