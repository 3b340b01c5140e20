"""Which symbols an alert may watch.

`SymbolValidator` is what the alert service needs; `ConfiguredOrPriced` accepts a symbol that
is configured (SAGE_SYMBOLS) or that the market service has a price for. (The market's symbol
catalog satisfies the same protocol when it exists: `require` returns the canonical symbol.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sage.alerts.conditions import InvalidAlert
from sage.market.reader import MarketReader
from sage.market.symbols import SymbolError, parse_symbol


class SymbolValidator(Protocol):
    async def require(self, symbol: str) -> str:
        """The canonical `BASE/QUOTE` form, or InvalidAlert naming `symbol`."""
        ...


class ConfiguredOrPriced:
    def __init__(self, configured: Iterable[str], prices: MarketReader) -> None:
        self.configured = frozenset(configured)
        self.prices = prices

    async def require(self, symbol: str) -> str:
        try:
            canonical = parse_symbol(symbol)
        except SymbolError:
            raise InvalidAlert([("symbol", f"{symbol!r} is not a symbol (BASE/QUOTE, e.g. BTC/USDT)")]) from None
        if canonical in self.configured or await self.prices.consolidated([canonical]):
            return canonical
        raise InvalidAlert([("symbol", f"{canonical} is not a symbol the market service knows")])
