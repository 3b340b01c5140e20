"""What other domains (portfolio, chat, alerts, observability) read from the market, as protocols.

`sage.market.service.MarketService` satisfies `MarketReader` structurally; coding against the
protocol keeps those domains testable with a small fake and independent of how prices are
ingested. Symbols are `BASE/QUOTE` (e.g. `BTC/USDT`) everywhere; `sage.market.symbols` parses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol


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


class SymbolValidator(Protocol):
    """What a request body's symbol is checked against (sage.market.catalog.ListedSymbols)."""

    async def require(self, symbol: str) -> str:
        """The canonical `BASE/QUOTE` of a listed symbol; a 422 SageError naming it otherwise."""
        ...


class MarketReader(Protocol):
    async def consolidated(self, symbols: Sequence[str] | None = None) -> Sequence[PriceQuote]:
        """Consolidated prices for `symbols` (None: the configured symbols); unknown ones are left out."""
        ...

    async def fear_greed(self) -> FearGreedQuote | None: ...
