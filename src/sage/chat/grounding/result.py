"""What the check found: every claim with its span, verdict and reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Claim:
    text: str
    start: int  # character offsets in the answer, end exclusive
    end: int
    value: str
    kind: str  # percent | amount | number | index | label | date
    verified: bool
    reason: str | None = None
    subject: str | None = None
    field: str | None = None
    matched: str | None = None  # the fact it was verified against (or confused with)
    user_supplied: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "value": self.value,
            "kind": self.kind,
            "subject": self.subject,
            "field": self.field,
            "verified": self.verified,
            "matched": self.matched,
            "user_supplied": self.user_supplied,
        }


@dataclass(frozen=True)
class GroundingResult:
    claims: tuple[Claim, ...]
    user_numbers_ignored: int = 0

    @property
    def unverified(self) -> list[Claim]:
        return [c for c in self.claims if not c.verified]

    @property
    def has_claims(self) -> bool:
        return bool(self.claims)

    @property
    def grounded(self) -> bool:
        return not self.unverified

    def spans(self) -> list[dict[str, Any]]:
        """The unverified figures as stored on the message and sent in `done`."""
        return [c.as_dict() for c in self.unverified]

    def as_dict(self) -> dict[str, Any]:
        return {
            "claims": len(self.claims),
            "verified": len(self.claims) - len(self.unverified),
            "unverified": len(self.unverified),
            "grounded": self.grounded,
            "user_numbers_ignored": self.user_numbers_ignored,
        }
