"""What an alert can watch, how a request for one is validated, and how its numbers read.

One validation for every caller (REST, chat tools): `AlertSpec.checked()` raises
`InvalidAlert` (a 422 whose details name each field, like a request-validation error).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from sage.errors import SageError


class Kind(StrEnum):
    PRICE_ABOVE = "price_above"
    PRICE_BELOW = "price_below"
    CHANGE_PCT = "change_pct"
    FEAR_GREED_ABOVE = "fear_greed_above"
    FEAR_GREED_BELOW = "fear_greed_below"
    PORTFOLIO_VALUE_ABOVE = "portfolio_value_above"
    PORTFOLIO_VALUE_BELOW = "portfolio_value_below"
    PORTFOLIO_RETURN_BELOW = "portfolio_return_below"  # a drawdown from the peak since creation


PRICE_KINDS = frozenset({Kind.PRICE_ABOVE, Kind.PRICE_BELOW})
FEAR_GREED_KINDS = frozenset({Kind.FEAR_GREED_ABOVE, Kind.FEAR_GREED_BELOW})
SYMBOL_KINDS = PRICE_KINDS | {Kind.CHANGE_PCT}
PORTFOLIO_VALUE_KINDS = frozenset({Kind.PORTFOLIO_VALUE_ABOVE, Kind.PORTFOLIO_VALUE_BELOW})
PORTFOLIO_KINDS = PORTFOLIO_VALUE_KINDS | {Kind.PORTFOLIO_RETURN_BELOW}


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    EITHER = "either"


class Repeat(StrEnum):
    ONCE = "once"
    EVERY = "every"


# change_pct windows and their length in seconds
WINDOWS: dict[str, int] = {"5m": 300, "1h": 3600, "4h": 4 * 3600, "24h": 24 * 3600}

DEFAULT_COOLDOWN_SECONDS = 3600
MIN_COOLDOWN_SECONDS = 60
MAX_COOLDOWN_SECONDS = 7 * 24 * 3600
MAX_PRICE = Decimal("1e12")  # no asset is priced near this; a typo with extra zeros is
MAX_CHANGE_PCT = Decimal(1000)
MAX_DRAWDOWN_PCT = Decimal(100)  # exclusive: a portfolio cannot lose more than all of it
NOTE_MAX = 280


class InvalidAlert(SageError):
    status = 422
    code = "validation_error"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        fields = ", ".join(field for field, _ in problems)
        details = [
            {"field": field, "in": "body", "message": message, "type": "value_error"} for field, message in problems
        ]
        super().__init__(f"Invalid alert: {fields}", details=details)


@dataclass(frozen=True)
class AlertSpec:
    """An alert as a user asks for it (before it has an id)."""

    kind: Kind
    threshold: Decimal
    symbol: str | None = None
    portfolio_id: uuid.UUID | None = None
    direction: Direction | None = None
    window: str | None = None
    repeat: Repeat = Repeat.ONCE
    cooldown_seconds: int = DEFAULT_COOLDOWN_SECONDS
    note: str | None = None

    def checked(self) -> AlertSpec:
        """This spec with defaults filled in, or InvalidAlert naming every wrong field."""
        problems: list[tuple[str, str]] = []
        spec = self
        if self.kind in SYMBOL_KINDS and not self.symbol:
            problems.append(("symbol", f"required for {self.kind.value}"))
        if self.kind in FEAR_GREED_KINDS and self.symbol:
            problems.append(("symbol", "Fear & Greed alerts watch the index, not a symbol; leave symbol out"))
        if self.kind in PORTFOLIO_KINDS:
            if self.symbol:
                problems.append(("symbol", "portfolio alerts watch a portfolio, not a symbol; leave symbol out"))
            if self.portfolio_id is None:
                problems.append(("portfolio_id", f"required for {self.kind.value}: the id of one of your portfolios"))
        elif self.portfolio_id is not None:
            problems.append(("portfolio_id", "only portfolio alerts take it"))
        if self.kind is Kind.CHANGE_PCT:
            if self.window not in WINDOWS:
                problems.append(("window", f"required for change_pct, one of {', '.join(WINDOWS)}"))
            if self.direction is None:
                spec = replace(spec, direction=Direction.EITHER)
            if not Decimal(0) < self.threshold <= MAX_CHANGE_PCT:
                problems.append(("threshold", f"a percentage above 0 and at most {MAX_CHANGE_PCT}"))
        else:
            for name in ("direction", "window"):
                if getattr(self, name) is not None:
                    problems.append((name, "only change_pct alerts take it"))
        if self.kind in PRICE_KINDS and not Decimal(0) < self.threshold <= MAX_PRICE:
            problems.append(("threshold", f"a price above 0 and at most {human_number(MAX_PRICE)}"))
        if self.kind in PORTFOLIO_VALUE_KINDS and not Decimal(0) < self.threshold <= MAX_PRICE:
            problems.append(("threshold", f"a value above 0 and at most {human_number(MAX_PRICE)}"))
        if self.kind is Kind.PORTFOLIO_RETURN_BELOW and not Decimal(0) < self.threshold < MAX_DRAWDOWN_PCT:
            problems.append(("threshold", "a percentage below the peak, above 0 and below 100 (10 means 10 % below)"))
        if self.kind in FEAR_GREED_KINDS and not Decimal(1) <= self.threshold <= Decimal(99):
            problems.append(("threshold", "a Fear & Greed value from 1 to 99"))
        if not MIN_COOLDOWN_SECONDS <= self.cooldown_seconds <= MAX_COOLDOWN_SECONDS:
            problems.append(("cooldown_seconds", f"from {MIN_COOLDOWN_SECONDS} to {MAX_COOLDOWN_SECONDS} seconds"))
        if self.note is not None and len(self.note) > NOTE_MAX:
            problems.append(("note", f"at most {NOTE_MAX} characters"))
        if problems:
            raise InvalidAlert(problems)
        return spec


def human_number(value: Decimal | float | int) -> str:
    """A number as people write it: 100,000 / 67,250.5 / 0.00001234 (never 18 trailing zeros)."""
    number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if number == 0:
        return "0"
    magnitude = abs(number)
    if magnitude >= 1000:
        quantum = Decimal("0.01")
    elif magnitude >= 1:
        quantum = Decimal("0.0001")
    else:  # small prices: four significant digits
        quantum = Decimal(1).scaleb(magnitude.adjusted() - 3)
    rounded = number.quantize(quantum).normalize()
    text = f"{rounded:,f}"
    return text


def describe(
    kind: str,
    threshold: Decimal,
    *,
    symbol: str | None,
    direction: str | None,
    window: str | None,
    portfolio: str | None = None,
    currency: str | None = None,
) -> str:
    """One line saying what an alert watches, e.g. "BTC/USDT above 100,000"; `portfolio` and
    `currency` name a portfolio alert's portfolio and its base currency."""
    level = human_number(threshold)
    if kind == Kind.PRICE_ABOVE:
        return f"{symbol} above {level}"
    if kind == Kind.PRICE_BELOW:
        return f"{symbol} below {level}"
    if kind == Kind.CHANGE_PCT:
        move = {"up": "up", "down": "down"}.get(direction or "", "up or down")
        return f"{symbol} {move} {level} % within {window}"
    if kind == Kind.FEAR_GREED_ABOVE:
        return f"Fear & Greed above {level}"
    if kind == Kind.FEAR_GREED_BELOW:
        return f"Fear & Greed below {level}"
    name = f"Portfolio {portfolio}" if portfolio else "Portfolio"
    unit = f" {currency}" if currency else ""
    if kind == Kind.PORTFOLIO_VALUE_ABOVE:
        return f"{name} value above {level}{unit}"
    if kind == Kind.PORTFOLIO_VALUE_BELOW:
        return f"{name} value below {level}{unit}"
    return f"{name} {level} % below its peak"
