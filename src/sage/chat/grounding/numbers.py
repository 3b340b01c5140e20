"""Numbers as written in an answer: digits, separators, K/M/B, %, currency marks, and Korean
number words ("9만 1천 달러" = 91,000; "1억 2천만 원" = 120,000,000).

Each number carries its precision (`unit`: one unit of the last digit written, scaled), so a
figure rounded or truncated to what was written still matches its fact. Dates and clock
times are masked first (`mask_dates`): "09:59" states no price.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sage.chat.grounding.dates import mask_dates

SCALES = {
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
KOREAN_SMALL = {"십": Decimal(10), "백": Decimal(100), "천": Decimal(1000)}
KOREAN_BIG = {"만": Decimal(10) ** 4, "억": Decimal(10) ** 8, "조": Decimal(10) ** 12}

_DIGITS = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_NUMBER = re.compile(
    r"(?P<lead>[+\-−](?=\$|US\$|₩|€|£))?(?P<currency>US\$|\$|₩|€|£)?\s?"
    r"(?P<sign>[+\-−])?"
    rf"(?P<num>{_DIGITS})(?!\d)"
    r"(?P<scale>\s?(?:thousand|million|billion|trillion|bn|mn)|[kKmMbBtT])?(?![A-Za-z])"
    r"(?P<pct>\s?(?:%|percent(?:age\spoints?)?\b|pct\b|pp\b|p\.p\.|퍼센트(?:\s?포인트)?|%p))?"
)
_KOREAN_START = re.compile(rf"(?P<sign>[+\-−])?(?P<num>{_DIGITS})\s?(?P<unit>[십백천만억조])")
_KOREAN_NEXT = re.compile(rf"(?:\s?(?P<num>{_DIGITS})\s?|(?P<bare>))(?P<unit>[십백천만억조])")
_KOREAN_TRAILING = re.compile(r"\s?(?P<num>\d+)(?![\d.,]|\s?[십백천만억조])")
_CURRENCY_AFTER = re.compile(r"\s?(?:USDT|USDC|USD|KRW|EUR|dollars?|달러|불|원)(?![A-Za-z])", re.IGNORECASE)
_PCT_AFTER = re.compile(r"\s?(?:%|퍼센트)")


@dataclass(frozen=True)
class NumberMention:
    text: str
    start: int
    end: int
    value: Decimal  # signed, scaled; a percent stays in percent
    unit: Decimal  # one unit of the last written digit, scaled
    percent: bool
    currency: bool
    scaled: bool  # K/M/B or Korean number words
    explicit_sign: int  # +1, -1, or 0 when no sign was written
    grouped_or_decimal: bool

    @property
    def bare_integer(self) -> bool:
        """Digits only: no currency, %, scale, separators or decimals ("5", "2025")."""
        return not (self.percent or self.currency or self.scaled or self.grouped_or_decimal)


def _decimal(raw: str) -> tuple[Decimal, int] | None:
    clean = raw.replace(",", "")
    try:
        value = Decimal(clean)
    except InvalidOperation:
        return None
    return value, (len(clean.split(".")[1]) if "." in clean else 0)


def _sign(char: str | None) -> int:
    return -1 if char in ("-", "−") else (1 if char == "+" else 0)


def _korean(text: str, masked: str) -> list[NumberMention]:
    found: list[NumberMention] = []
    position = 0
    while (first := _KOREAN_START.search(masked, position)) is not None:
        if first.start() > 0 and masked[first.start() - 1].isalnum():
            position = first.end()
            continue
        total, section = Decimal(0), Decimal(0)
        unit = Decimal(0)
        pending: list[Decimal] = []  # precisions of the current section's tokens
        tokens = [(first.group("num"), first.group("unit"))]
        end = first.end()
        while (more := _KOREAN_NEXT.match(masked, end)) is not None:
            if more.group("num") is None and masked[end - 1 : end].isspace():
                break
            tokens.append((more.group("num"), more.group("unit")))
            end = more.end()
        trailing = _KOREAN_TRAILING.match(masked, end) if tokens[-1][1] in KOREAN_BIG else None
        if trailing is not None:
            tokens.append((trailing.group("num"), ""))
            end = trailing.end()
        for raw, word in tokens:
            parsed = _decimal(raw) if raw else None
            number, places = parsed if parsed else (Decimal(1) if word in KOREAN_SMALL else Decimal(0), 0)
            step = Decimal(1).scaleb(-places)
            if not word:  # plain digits after the last 만/억/조: "9만 7250"
                total += number
                unit = step
                continue
            if word in KOREAN_SMALL:
                section += number * KOREAN_SMALL[word]
                pending.append(step * KOREAN_SMALL[word])
            else:
                if raw:
                    section += number
                    pending.append(step)
                big = KOREAN_BIG[word]
                total += (section or Decimal(1)) * big
                unit = min(p * big for p in pending) if pending else big
                section, pending = Decimal(0), []
        if pending:  # "3천" alone: a section never multiplied by 만/억/조
            total += section
            unit = min(pending)
        sign = _sign(first.group("sign"))
        percent = bool(_PCT_AFTER.match(masked, end))
        currency = bool(_CURRENCY_AFTER.match(masked, end))
        start = first.start("sign") if first.group("sign") else first.start("num")
        found.append(
            NumberMention(
                text=text[start:end].strip(),
                start=start,
                end=end,
                value=total * (-1 if sign < 0 else 1),
                unit=unit or Decimal(1),
                percent=percent,
                currency=currency,
                scaled=True,
                explicit_sign=sign,
                grouped_or_decimal=True,
            )
        )
        position = end
    return found


def find_numbers(text: str) -> list[NumberMention]:
    """Every number written in `text`, in order, with how it was written (no claim filtering)."""
    masked = mask_dates(text)
    korean = _korean(text, masked)
    taken = [(k.start, k.end) for k in korean]
    found = list(korean)
    for match in _NUMBER.finditer(masked):
        if not match.group("num"):
            continue
        num_start = match.start("num")
        if any(a <= num_start < b for a, b in taken):
            continue
        start = (
            match.start("lead")
            if match.group("lead")
            else match.start("currency")
            if match.group("currency")
            else match.start("sign")
            if match.group("sign")
            else num_start
        )
        before = masked[start - 1] if start > 0 else " "
        if before.isalpha() or before in "_.":
            continue  # part of a name or a version: Web3, x2, sha256, v1.2
        parsed = _decimal(match.group("num"))
        if parsed is None:
            continue
        magnitude, places = parsed
        currency = bool(match.group("currency"))
        scale_word = (match.group("scale") or "").strip()
        end = match.end()
        if scale_word in ("m", "t") and not currency:
            scale_word = ""  # "5m candles", "3t": minutes and the like, not millions
            end = match.end("num")
        scale = SCALES.get(scale_word.lower(), Decimal(1))
        percent = bool(match.group("pct")) and end == match.end()
        sign = _sign(match.group("lead") or match.group("sign"))
        if sign < 0 and masked[:start].rstrip()[-1:].isdigit():
            sign, start = 0, num_start  # a hyphen between two numbers is a range ("0-100")
        currency = currency or bool(_CURRENCY_AFTER.match(masked, end))
        found.append(
            NumberMention(
                text=text[start:end].strip(),
                start=start,
                end=end,
                value=magnitude * scale * (-1 if sign < 0 else 1),
                unit=Decimal(1).scaleb(-places) * scale,
                percent=percent,
                currency=currency,
                scaled=scale != 1,
                explicit_sign=sign,
                grouped_or_decimal="," in match.group("num") or "." in match.group("num"),
            )
        )
    return sorted(found, key=lambda n: n.start)
