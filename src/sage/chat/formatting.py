"""Number and time formatting in one place, so prompts, offline answers and the grounding
check all write (and read) a figure the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal


def quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def price_places(value: Decimal) -> int:
    magnitude = abs(value)
    if magnitude >= 1000:
        return 2
    if magnitude >= 1:
        return 4 if magnitude < 10 else 2 if magnitude >= 100 else 3
    return 6


def fmt_number(value: Decimal, places: int, *, sign: bool = False) -> str:
    text = f"{quantize(value, places):,.{places}f}"
    return f"+{text}" if sign and value > 0 else text


def fmt_price(value: Decimal) -> str:
    return fmt_number(value, price_places(value))


def fmt_pct(value: Decimal, *, sign: bool = True) -> str:
    return fmt_number(value, 2, sign=sign) + "%"


def fmt_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def significant(value: Decimal, digits: int) -> str:
    """`value` rounded to `digits` significant digits, as text (for fingerprints)."""
    if value == 0:
        return "0"
    return f"{float(value):.{digits}g}"
