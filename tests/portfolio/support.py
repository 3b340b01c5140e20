"""Helpers for portfolio tests (and the chat tests that value a portfolio)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Position:
    """A holding as `sage.portfolio.valuation.summarize` reads it."""

    symbol: str
    quantity: Decimal
    average_cost: Decimal
    user_id: uuid.UUID | None = None
