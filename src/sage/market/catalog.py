"""The symbol catalog: which pairs exist, on which exchange, and search over them.

The ingestor refreshes the stored catalog (`market_symbols`) from the exchanges' REST APIs
(`sage.market.catalog_refresh`); every process holds an in-memory index of it
(`SymbolCatalog`), re-read every SAGE_CATALOG_RELOAD_SECONDS, so `is_listed` and search
never touch the database on a request. The configured SAGE_SYMBOLS are always listed.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from sage.errors import NotFound, SageError, Unavailable
from sage.market.catalog_sources import Listing
from sage.market.history import DB_ERRORS, stop_if_cancelled
from sage.market.symbols import SymbolError, parse_symbol, split_symbol
from sage.store.catalog_tables import MarketSymbolRow
from sage.store.db import Database

log = logging.getLogger(__name__)

# Quotes users most likely mean, first; the rest alphabetically after them.
_QUOTE_RANK = {q: n for n, q in enumerate(("USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY"))}
# A refresh that returns fewer than this share of the stored pairs is taken for a broken
# answer and not applied (a real exchange delists a few pairs a day, never half of them).
MIN_REFRESH_RATIO = 0.5


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    symbol: str
    base: str
    quote: str
    name: str | None
    exchanges: tuple[str, ...]
    always_on: bool  # one of SAGE_SYMBOLS: ingested all the time


class RefreshRejected(Exception):
    """A refresh answer was not applied (empty or implausibly short); the old catalog stays."""


def _upsert_listing() -> Any:
    stmt = insert(MarketSymbolRow)
    columns = (
        "exchange_symbol",
        "base",
        "quote",
        "name",
        "tick_size",
        "lot_size",
        "price_precision",
        "amount_precision",
    )
    return stmt.on_conflict_do_update(
        index_elements=[MarketSymbolRow.exchange, MarketSymbolRow.symbol],
        set_={col: getattr(stmt.excluded, col) for col in columns} | {"updated_at": func.now()},
    )


_UPSERT_LISTING = _upsert_listing()


async def save_listings(db: Database, exchange: str, listings: Sequence[Listing]) -> int:
    """Replace one exchange's rows with `listings` in one transaction; refused (the stored
    rows stay) when the list is empty or less than MIN_REFRESH_RATIO of what is stored."""
    unique = {item.symbol: item for item in listings if item.exchange == exchange}
    async with db.session() as session:
        stored = (
            await session.execute(
                select(func.count()).select_from(MarketSymbolRow).where(MarketSymbolRow.exchange == exchange)
            )
        ).scalar_one()
        if not unique or len(unique) < stored * MIN_REFRESH_RATIO:
            raise RefreshRejected(f"{exchange} listed {len(unique)} pairs against {stored} stored; not applied")
        rows = [
            {
                "exchange": exchange,
                "symbol": item.symbol,
                "exchange_symbol": item.exchange_symbol,
                "base": item.base,
                "quote": item.quote,
                "name": item.name,
                "tick_size": item.tick_size,
                "lot_size": item.lot_size,
                "price_precision": item.price_precision,
                "amount_precision": item.amount_precision,
            }
            for item in unique.values()
        ]
        await session.execute(_UPSERT_LISTING, rows)  # executemany of one cached statement
        await session.execute(
            delete(MarketSymbolRow).where(
                MarketSymbolRow.exchange == exchange, MarketSymbolRow.symbol.not_in(list(unique))
            )
        )
        await session.commit()
    return len(unique)


async def stored_count(db: Database, exchange: str) -> int:
    async with db.session() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(MarketSymbolRow).where(MarketSymbolRow.exchange == exchange)
                )
            ).scalar_one()
        )


async def load_entries(db: Database) -> list[CatalogEntry]:
    async with db.session() as session:
        rows = (
            await session.execute(
                select(MarketSymbolRow.symbol, MarketSymbolRow.exchange, MarketSymbolRow.name).order_by(
                    MarketSymbolRow.symbol, MarketSymbolRow.exchange
                )
            )
        ).all()
    merged: dict[str, tuple[list[str], str | None]] = {}
    for symbol, exchange, name in rows:
        exchanges, known_name = merged.setdefault(symbol, ([], None))
        exchanges.append(exchange)
        if name and not known_name:
            merged[symbol] = (exchanges, name)
    out = []
    for symbol, (exchanges, name) in merged.items():
        base, quote = split_symbol(symbol)
        out.append(CatalogEntry(symbol, base, quote, name, tuple(exchanges), False))
    return out


class SymbolCatalog:
    """Which symbols exist. Built by the composition root; the market routes, chat,
    portfolio and alerts call `require` / `is_listed`."""

    def __init__(self, db: Database, *, configured: Sequence[str], exchanges: Sequence[str]) -> None:
        self.db = db
        self.configured = tuple(configured)
        self.exchanges = tuple(exchanges)
        self._entries: list[CatalogEntry] = []
        self._by_symbol: dict[str, CatalogEntry] = {}
        self._rank: dict[str, int] = {}
        self._bases: list[tuple[str, str]] = []
        self._compacts: list[tuple[str, str]] = []
        self._names: list[tuple[str, str]] = []
        self._haystacks: list[tuple[CatalogEntry, str]] = []
        self._install([])
        self.loaded = False

    def _install(self, stored: Iterable[CatalogEntry]) -> None:
        by_symbol = {e.symbol: e for e in stored}
        for symbol in self.configured:
            known = by_symbol.get(symbol)
            base, quote = split_symbol(symbol)
            by_symbol[symbol] = CatalogEntry(
                symbol,
                base,
                quote,
                known.name if known else None,
                known.exchanges if known else self.exchanges,
                True,
            )

        def rank(e: CatalogEntry) -> tuple[int, int, int, str]:
            return (_QUOTE_RANK.get(e.quote, len(_QUOTE_RANK)), -len(e.exchanges), len(e.base), e.symbol)

        entries = sorted(by_symbol.values(), key=rank)
        self._entries = entries
        self._by_symbol = by_symbol
        self._rank = {e.symbol: n for n, e in enumerate(entries)}
        # Sorted keys for prefix lookups by bisection; one string per entry for substrings.
        self._bases = sorted((e.base, e.symbol) for e in entries)
        self._compacts = sorted((e.base + e.quote, e.symbol) for e in entries)
        self._names = sorted(((e.name or "").upper(), e.symbol) for e in entries if e.name)
        self._haystacks = [(e, f"{e.base}\x00{(e.name or '').upper()}") for e in entries]

    async def reload(self) -> int:
        """Re-read the stored catalog; on a database error the current index stays."""
        try:
            stored = await load_entries(self.db)
        except DB_ERRORS as exc:
            stop_if_cancelled()
            log.warning("symbol catalog not reloaded", extra={"error": type(exc).__name__})
            return len(self._entries)
        self._install(stored)
        self.loaded = True
        return len(self._entries)

    async def run_reloads(self, interval: float) -> None:
        while True:
            stop_if_cancelled()
            await asyncio.sleep(interval)
            await self.reload()

    def __len__(self) -> int:
        return len(self._entries)

    # -- lookups ------------------------------------------------------------------------------
    def is_listed(self, symbol: str) -> bool:
        return symbol in self._by_symbol

    def entry(self, symbol: str) -> CatalogEntry | None:
        return self._by_symbol.get(symbol)

    def exchanges_for(self, symbol: str) -> tuple[str, ...]:
        entry = self._by_symbol.get(symbol)
        return entry.exchanges if entry else ()

    def require(self, raw: str) -> str:
        """ "link" -> "LINK/USDT" when listed; NotFound (404) naming the input otherwise."""
        try:
            symbol = parse_symbol(raw)
        except SymbolError:
            raise NotFound(f"Unknown symbol {raw!r}", details={"symbol": raw}) from None
        if symbol not in self._by_symbol:
            raise NotFound(
                f"Unknown symbol {symbol}: no exchange Sage follows lists it",
                details={"symbol": symbol, "catalog_size": len(self._entries)},
            )
        return symbol

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str = "", *, quote: str | None = None, limit: int = 20) -> list[CatalogEntry]:
        """By base, quote or name: exact base first, then base prefixes, then glued-symbol
        or name prefixes, then substrings, then pairs quoted in the query; within each tier
        USDT pairs and pairs listed on more exchanges come first. Prefixes are found by
        bisection; the substring scan runs only when the prefixes leave room."""
        text = query.strip().upper()
        want_quote = quote.strip().upper() if quote else None
        base_part, sep, quote_part = text.replace("_", "/").replace("-", "/").partition("/")
        out: list[CatalogEntry] = []
        seen: set[str] = set()

        def take(symbols: Iterable[str]) -> bool:
            """Add in rank order; True once `limit` is reached."""
            for symbol in sorted(symbols, key=self._rank.__getitem__):
                entry = self._by_symbol[symbol]
                if symbol in seen or (want_quote is not None and entry.quote != want_quote):
                    continue
                seen.add(symbol)
                out.append(entry)
                if len(out) >= limit:
                    return True
            return False

        if sep:  # "BTC/US": base exactly, quote by prefix
            take(
                s
                for b, s in _prefixed(self._bases, base_part)
                if b == base_part and self._by_symbol[s].quote.startswith(quote_part)
            )
            return out
        if not text:
            take(e.symbol for e in self._entries)
            return out
        by_base = _prefixed(self._bases, text)
        if take(s for b, s in by_base if b == text) or take(s for _, s in by_base):
            return out
        if take([s for _, s in _prefixed(self._compacts, text)] + [s for _, s in _prefixed(self._names, text)]):
            return out
        if take(e.symbol for e, hay in self._haystacks if text in hay):
            return out
        take(e.symbol for e in self._entries if e.quote.startswith(text))
        return out


def _prefixed(keys: list[tuple[str, str]], prefix: str) -> list[tuple[str, str]]:
    lo = bisect_left(keys, (prefix, ""))
    hi = bisect_left(keys, (prefix + "\uffff", ""))
    return keys[lo:hi]


class UnlistedSymbol(SageError):
    """A symbol in a request body that no followed exchange lists: a 422 naming the field."""

    status = 422
    code = "validation_error"

    def __init__(self, raw: str, reason: str, field: str = "symbol") -> None:
        message = f"{raw}: {reason}"
        super().__init__(message, details=[{"field": field, "in": "body", "message": message, "type": "value_error"}])


class ListedSymbols:
    """`SymbolValidator` over the catalog, for request bodies (portfolio trades and imports,
    alerts, chat tools). Same lookup as `SymbolCatalog.require`, which answers a path's
    symbol with a 404; a body's unknown symbol is a 422 naming the field instead."""

    def __init__(self, catalog: SymbolCatalog) -> None:
        self.catalog = catalog

    async def require(self, symbol: str) -> str:
        try:
            canonical = parse_symbol(symbol)
        except SymbolError:
            raise UnlistedSymbol(symbol, "not a symbol (BASE/QUOTE, e.g. BTC/USDT)") from None
        if self.catalog.is_listed(canonical):
            return canonical
        if not self.catalog.loaded:
            # Before the first read of the stored catalog only the configured symbols are known:
            # refusing others as unknown would be wrong, so ask the user to retry.
            raise Unavailable(f"{canonical} cannot be checked until the symbol catalog is loaded")
        raise UnlistedSymbol(canonical, "unknown symbol: no exchange Sage follows lists it")
