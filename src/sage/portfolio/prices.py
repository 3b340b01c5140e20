"""What the portfolio and the chat need from the market service, as protocols.

`sage.market.service.MarketService` satisfies `MarketReader` structurally; coding
against the protocol keeps these domains testable with a small fake and free of an
import cycle. Symbols are `BASE/QUOTE` (e.g. `BTC/USDT`) everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

# Longest first, so BTCUSDT splits as BTC + USDT and not BTCUSD + T.
KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "KRW", "EUR", "BTC", "ETH")
DEFAULT_QUOTE = "USDT"
_PART = re.compile(r"^[A-Z0-9]{1,15}$")


class PriceQuote(Protocol):
    """One consolidated price (sage.market.models.ConsolidatedPrice)."""

    @property
    def symbol(self) -> str: ...

    @property
    def price(self) -> Decimal: ...

    @property
    def change_pct_24h(self) -> Decimal | None: ...

    @property
    def as_of(self) -> datetime: ...

    @property
    def stale(self) -> bool: ...

    @property
    def diverged(self) -> bool: ...


class FearGreedQuote(Protocol):
    """The latest Fear & Greed reading (sage.market.models.FearGreedReading)."""

    @property
    def value(self) -> int: ...

    @property
    def classification(self) -> str: ...

    @property
    def as_of(self) -> datetime: ...


class MarketReader(Protocol):
    async def consolidated(self, symbols: Sequence[str] | None = None) -> Sequence[PriceQuote]:
        """Consolidated prices for `symbols` (None: the configured symbols); unknown ones are left out."""
        ...

    async def fear_greed(self) -> FearGreedQuote | None: ...


# The market service may start after (or without) the domains that read it, so they
# look it up when they need it rather than holding a reference from start-up.
MarketLookup = Callable[[], MarketReader | None]


def normalize_symbol(raw: str) -> str:
    """`btc`, `BTCUSDT`, `btc_usdt`, `BTC-USDT`, `BTC/USDT` -> `BTC/USDT`. Raises ValueError."""
    text = raw.strip().upper()
    for separator in ("/", "_", "-", ":"):
        if separator in text:
            base, _, quote = text.partition(separator)
            if not quote:
                raise ValueError(f"{raw!r} is not a symbol; use BASE/QUOTE, e.g. BTC/USDT")
            break
    else:
        base, quote = text, ""
        for candidate in KNOWN_QUOTES:
            if text.endswith(candidate) and len(text) > len(candidate):
                base, quote = text[: -len(candidate)], candidate
                break
    quote = quote or DEFAULT_QUOTE
    if not _PART.match(base) or not _PART.match(quote):
        raise ValueError(f"{raw!r} is not a symbol; use BASE/QUOTE, e.g. BTC/USDT")
    return f"{base}/{quote}"
