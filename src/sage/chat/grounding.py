"""Checks every figure an answer states against the context it was given.

A *claim* is a number the answer states about a price, an amount, a percentage or the
Fear & Greed Index: it carries a currency mark, a % sign, a K/M/B suffix, thousands
separators or decimals, or sits right after a price/index word. Counts, list markers,
durations (24h, 7-day), times, dates and years are not claims, and neither is any number
the user typed in the question.

A claim is verified when some context figure equals it at the precision it was written
(one unit of its last digit, so both rounding and truncation pass: "$97.3K" matches
97,250.50), with percent <-> fraction and K/M/B handled; "about/around" widen that to
2 %, and "above/below" accept a figure up to 25 % beyond the stated bound. An explicit sign must match the figure's.

Two rates are kept over a rolling window of answers and exported as metrics: the
response-level hallucination rate (answers with at least one unverified claim / answers
with claims) and the claim-level rate (unverified claims / claims).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sage.chat.context import Fact
from sage.observability.metrics import Metrics

_SCALES = {
    "k": Decimal(1_000),
    "thousand": Decimal(1_000),
    "m": Decimal(1_000_000),
    "mn": Decimal(1_000_000),
    "million": Decimal(1_000_000),
    "b": Decimal(1_000_000_000),
    "bn": Decimal(1_000_000_000),
    "billion": Decimal(1_000_000_000),
    "t": Decimal(1_000_000_000_000),
    "trillion": Decimal(1_000_000_000_000),
}
_NUMBER = re.compile(
    r"(?P<currency>US\$|\$|₩|€|£)?\s?"
    r"(?P<sign>[+\-−])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<scale>\s?(?:thousand|million|billion|trillion|bn|mn)|[kKmMbBtT])?(?![A-Za-z])"
    r"(?P<pct>\s?(?:%|percent\b|pct\b|퍼센트))?"
)
# Times and dates are masked before numbers are read: "as of 09:59:58 UTC" states no price.
_TIME_OR_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?)?(?:Z|\s?UTC|[+-]\d{2}:?\d{2})?"
    r"|\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?"
    r"|\d{1,2}/\d{1,2}/\d{2,4}"
)
_UNIT_AFTER = re.compile(
    r"^[\s\-]?(?:h|hr|hrs|hours?|d|days?|w|wks?|weeks?|mo|months?|y|yrs?|years?|mins?|minutes?|s|secs?|seconds?"
    r"|x|st|nd|rd|th|시간|일|주|개월|년|분|초)(?![A-Za-z])",
    re.IGNORECASE,
)
_CURRENCY_AFTER = re.compile(r"^\s?(?:USDT|USDC|USD|KRW|EUR|dollars?|달러|원)(?![A-Za-z])", re.IGNORECASE)
_COIN_AFTER = re.compile(r"^\s?(?:[A-Z]{2,6})(?![A-Za-z])")
_INDEX_WORDS = re.compile(r"(?:fear|greed|index|sentiment|f&g|탐욕|공포|지수)", re.IGNORECASE)
_PRICE_WORDS = re.compile(
    r"\b(?:price[sd]?|trading|trades|traded|at|worth|valued?|value|costs?|p&l|profit|loss|gain(?:ed|s)?|lost|"
    r"up|down|rose|fell|dropped|climbed|jumped|slid|around|about|near|hit|reached|to|from|가격)\s*$",
    re.IGNORECASE,
)
_APPROX = re.compile(r"(?:about|around|roughly|approximately|approx\.?|nearly|almost|~|약|대략)\s*$", re.IGNORECASE)
_ABOVE = re.compile(r"(?:above|over|more than|exceed(?:s|ing)?|higher than|at least|beyond)\s*$", re.IGNORECASE)
_BELOW = re.compile(r"(?:below|under|less than|lower than|at most)\s*$", re.IGNORECASE)
APPROX_TOLERANCE = Decimal("0.02")
DIRECTIONAL_RANGE = Decimal("1.25")
# The prompt explains the index's 0..100 scale; restating it is not a claim about the market.
_INDEX_SCALE = (Fact("index scale", Decimal(0), "index"), Fact("index scale", Decimal(100), "index"))


@dataclass(frozen=True)
class NumberMention:
    text: str
    start: int
    end: int
    value: Decimal  # signed, scaled (K/M/B applied), as written (percent stays percent)
    unit: Decimal  # one unit of the last written digit, scaled
    percent: bool
    currency: bool
    scaled: bool
    explicit_sign: int  # +1, -1, or 0 when no sign was written
    grouped_or_decimal: bool


@dataclass(frozen=True)
class Claim:
    text: str
    value: str
    kind: str  # percent | amount | index | number
    verified: bool
    matched: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "value": self.value,
            "kind": self.kind,
            "verified": self.verified,
            "matched": self.matched,
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "claims": len(self.claims),
            "verified": len(self.claims) - len(self.unverified),
            "unverified": len(self.unverified),
            "grounded": self.grounded,
            "user_numbers_ignored": self.user_numbers_ignored,
        }


def _mask(text: str) -> str:
    return _TIME_OR_DATE.sub(lambda m: " " * len(m.group(0)), text)


def find_numbers(text: str) -> list[NumberMention]:
    """Every number written in `text` with how it was written (no claim filtering)."""
    masked = _mask(text)
    found: list[NumberMention] = []
    for match in _NUMBER.finditer(masked):
        if not match.group("num"):
            continue
        start = (
            match.start("currency")
            if match.group("currency")
            else match.start("sign")
            if match.group("sign")
            else match.start("num")
        )
        before = masked[start - 1] if start > 0 else " "
        if before.isalpha() or before == "_":
            continue  # part of a name: Web3, x2, sha256
        raw = match.group("num").replace(",", "")
        try:
            magnitude = Decimal(raw)
        except InvalidOperation:
            continue
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        scale = _SCALES.get((match.group("scale") or "").strip().lower(), Decimal(1))
        sign_char = match.group("sign") or ""
        explicit = -1 if sign_char in ("-", "−") else (1 if sign_char == "+" else 0)
        if explicit < 0 and masked[:start].rstrip()[-1:].isdigit():
            explicit, start = 0, match.start("num")  # a hyphen between two numbers is a range ("0-100")
        found.append(
            NumberMention(
                text=text[start : match.end()].strip(),
                start=start,
                end=match.end(),
                value=magnitude * scale * (-1 if explicit < 0 else 1),
                unit=Decimal(1).scaleb(-decimals) * scale,
                percent=bool(match.group("pct")),
                currency=bool(match.group("currency")),
                scaled=scale != 1,
                explicit_sign=explicit,
                grouped_or_decimal="," in match.group("num") or "." in match.group("num"),
            )
        )
    return found


def _claim_kind(mention: NumberMention, text: str) -> str | None:
    """The kind of claim a number makes, or None when it is not a claim."""
    before = text[max(0, mention.start - 40) : mention.start]
    after = text[mention.end : mention.end + 12]
    line_start = text.rfind("\n", 0, mention.start) + 1
    list_marker = text[line_start : mention.start].strip() in ("", "-", "*", "•") and after.startswith((".", ")"))
    if mention.percent:
        return "percent"
    if mention.currency or _CURRENCY_AFTER.match(after):
        return "amount"
    if mention.scaled:
        return "amount"
    if _UNIT_AFTER.match(after) or list_marker:
        return None
    is_year = not mention.grouped_or_decimal and 1900 <= mention.value <= 2100
    if _INDEX_WORDS.search(before) and not mention.grouped_or_decimal and 0 <= mention.value <= 100:
        return "index"
    if is_year:
        return None
    if mention.grouped_or_decimal:
        return "amount"
    if _PRICE_WORDS.search(before[-25:]) and not _COIN_AFTER.match(after):
        return "amount"
    return None


def _close(claim: Decimal, fact: Decimal, unit: Decimal, approx: bool) -> bool:
    tolerance = unit
    if approx:
        tolerance = max(tolerance, abs(fact) * APPROX_TOLERANCE)
    return abs(claim - fact) <= tolerance


def _matches(mention: NumberMention, kind: str, fact: Fact, before: str) -> bool:
    value = abs(mention.value)
    target = abs(fact.value)
    if mention.explicit_sign and fact.value != 0 and (mention.explicit_sign > 0) != (fact.value > 0):
        return False
    approx = bool(_APPROX.search(before))
    # "above $95K" is true of a figure a little above it, not of every larger figure in the context
    if _ABOVE.search(before):
        return value - mention.unit <= target <= value * DIRECTIONAL_RANGE
    if _BELOW.search(before):
        return value / DIRECTIONAL_RANGE <= target <= value + mention.unit
    candidates: list[tuple[Decimal, Decimal]] = []
    if kind == "percent":
        if fact.kind == "percent":
            candidates.append((target, mention.unit))
        else:
            candidates.append((target * 100, mention.unit))  # context holds a fraction
    else:
        if fact.kind == "percent":
            if value < 1 and mention.grouped_or_decimal:
                candidates.append((target, mention.unit * 100))  # answer states a fraction: 0.0231 = 2.31 %
                value = value * 100
        else:
            candidates.append((target, mention.unit))
    return any(_close(value, fact_value, unit, approx) for fact_value, unit in candidates)


def check_answer(answer: str, facts: Iterable[Fact], *, question: str = "") -> GroundingResult:
    """Every claim in `answer`, verified or not against `facts` (numbers from `question` excluded)."""
    facts = list(facts)
    typed = find_numbers(question)
    masked = _mask(answer)
    claims: list[Claim] = []
    ignored = 0
    for mention in find_numbers(answer):
        kind = _claim_kind(mention, masked)
        if kind is None:
            continue
        if any(
            abs(abs(mention.value) - abs(u.value)) <= max(mention.unit, u.unit) and mention.percent == u.percent
            for u in typed
        ):
            ignored += 1
            continue
        before = masked[max(0, mention.start - 30) : mention.start]
        pool = [*facts, *_INDEX_SCALE] if kind == "index" else facts
        matched = next((f for f in pool if _matches(mention, kind, f, before)), None)
        claims.append(
            Claim(
                text=mention.text,
                value=str(mention.value),
                kind=kind,
                verified=matched is not None,
                matched=matched.label if matched is not None else None,
            )
        )
    return GroundingResult(claims=tuple(claims), user_numbers_ignored=ignored)


class GroundingStats:
    """Rolling hallucination rates over the last `window` answers, exported as metrics.

    Counters (GroundingEvaluated / GroundingUnverified, dim level=response|claim) are
    monotonic so CloudWatch can compute fleet-wide rates; the HallucinationRate gauge is
    this process's recent rate in percent, which the spec alerts on above 1 %.
    """

    def __init__(self, metrics: Metrics, window: int = 1000) -> None:
        self.metrics = metrics
        self._answers: deque[tuple[int, int]] = deque(maxlen=window)  # (claims, unverified)
        self._lock = threading.Lock()

    def record(self, result: GroundingResult) -> None:
        if not result.has_claims:
            return
        unverified = len(result.unverified)
        self.metrics.incr("GroundingEvaluated", level="response")
        self.metrics.incr("GroundingEvaluated", len(result.claims), level="claim")
        if unverified:
            self.metrics.incr("GroundingUnverified", level="response")
            self.metrics.incr("GroundingUnverified", unverified, level="claim")
        with self._lock:
            self._answers.append((len(result.claims), unverified))
            response_rate, claim_rate = self._rates()
        self.metrics.gauge("HallucinationRate", response_rate, unit="Percent", level="response")
        self.metrics.gauge("HallucinationRate", claim_rate, unit="Percent", level="claim")

    def _rates(self) -> tuple[float, float]:
        answers = len(self._answers)
        if not answers:
            return 0.0, 0.0
        flagged = sum(1 for _, bad in self._answers if bad)
        claims = sum(total for total, _ in self._answers)
        bad_claims = sum(bad for _, bad in self._answers)
        return 100.0 * flagged / answers, (100.0 * bad_claims / claims if claims else 0.0)

    def rates(self) -> dict[str, float]:
        with self._lock:
            response_rate, claim_rate = self._rates()
            return {
                "response_percent": response_rate,
                "claim_percent": claim_rate,
                "answers": float(len(self._answers)),
            }
