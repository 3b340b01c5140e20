"""Which symbols a portfolio may trade: only ones the market knows.

`SymbolValidator` is what the portfolio needs; `MarketSymbols` satisfies it for now with
"configured in SAGE_SYMBOLS, or the market service has a price for it". The market domain's
symbol catalog (`SymbolCatalog.require`) satisfies the same protocol and replaces it in the
composition root.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sage.errors import SageError, Unavailable
from sage.market.reader import MarketReader
from sage.market.symbols import SymbolError, parse_symbol


class UnknownSymbol(SageError):
    status = 422
    code = "validation_error"


class SymbolValidator(Protocol):
    async def require(self, symbol: str) -> str:
        """The symbol normalized to BASE/QUOTE; raises a 422 SageError naming it when unknown."""
        ...


def unknown(raw: str, reason: str, field: str = "symbol") -> UnknownSymbol:
    return UnknownSymbol(f"{raw}: {reason}", details=[{"field": field, "message": f"{raw}: {reason}"}])


class MarketSymbols:
    def __init__(self, market: MarketReader, configured: Sequence[str]) -> None:
        self._market = market
        self._configured = frozenset(configured)

    async def require(self, symbol: str) -> str:
        try:
            normalized = parse_symbol(symbol)
        except SymbolError as exc:
            raise unknown(symbol, "not a symbol") from exc
        if normalized in self._configured:
            return normalized
        try:
            quotes = await self._market.consolidated([normalized])
        except Exception as exc:  # the market being down is not the user's error: 503, try again
            raise Unavailable(f"{normalized} cannot be checked while market data is unavailable") from exc
        if not any(q.symbol == normalized for q in quotes):
            raise unknown(normalized, "unknown symbol (the market has no price for it)")
        return normalized
