"""The exchanges' market lists, parsed (pure functions) and fetched over REST.

Binance `GET /api/v3/exchangeInfo` (weight 20): `symbols[]` with `status` ("TRADING"),
`baseAsset`, `quoteAsset`, `quoteAssetPrecision`, `baseAssetPrecision` and `filters[]`
(`PRICE_FILTER.tickSize`, `LOT_SIZE.stepSize`). Gate.io `GET /api/v4/spot/currency_pairs`:
a list of `{id: "BTC_USDT", base, base_name, quote, trade_status: "tradable", precision,
amount_precision, ...}`. Entries that are not trading, or whose assets Sage's symbol
parser cannot read, are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sage.market.rest import Budget, ExchangeRest
from sage.market.symbols import SymbolError, parse_symbol

EXCHANGE_INFO_WEIGHT = 20
SEED_FILE = Path(__file__).parent / "replay_data" / "catalog.json"


@dataclass(frozen=True, slots=True)
class Listing:
    """One pair on one exchange."""

    exchange: str
    symbol: str  # BASE/QUOTE
    exchange_symbol: str
    base: str
    quote: str
    name: str | None = None
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    price_precision: int | None = None
    amount_precision: int | None = None


class CatalogFormatError(ValueError):
    """The answer is not a market list at all (not a partial one: those are filtered)."""


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number.normalize() if number.is_finite() and number > 0 else None


def _int(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value <= 32 else None


def _symbol(base: Any, quote: Any) -> str | None:
    if not isinstance(base, str) or not isinstance(quote, str):
        return None
    try:
        symbol = parse_symbol(f"{base}/{quote}")
    except SymbolError:
        return None
    # parse_symbol upper-cases; an exchange asset in another case is a different asset.
    return symbol if symbol == f"{base}/{quote}" else None


def parse_binance_exchange_info(body: Any) -> list[Listing]:
    if not isinstance(body, dict) or not isinstance(body.get("symbols"), list):
        raise CatalogFormatError("exchangeInfo without a symbols list")
    out = []
    for entry in body["symbols"]:
        if not isinstance(entry, dict) or entry.get("status") != "TRADING":
            continue
        symbol = _symbol(entry.get("baseAsset"), entry.get("quoteAsset"))
        raw = entry.get("symbol")
        if symbol is None or not isinstance(raw, str):
            continue
        filters = {f.get("filterType"): f for f in entry.get("filters") or [] if isinstance(f, dict)}
        out.append(
            Listing(
                exchange="binance",
                symbol=symbol,
                exchange_symbol=raw,
                base=entry["baseAsset"],
                quote=entry["quoteAsset"],
                tick_size=_decimal(filters.get("PRICE_FILTER", {}).get("tickSize")),
                lot_size=_decimal(filters.get("LOT_SIZE", {}).get("stepSize")),
                price_precision=_int(entry.get("quoteAssetPrecision")),
                amount_precision=_int(entry.get("baseAssetPrecision")),
            )
        )
    return out


def parse_gateio_currency_pairs(body: Any) -> list[Listing]:
    if not isinstance(body, list):
        raise CatalogFormatError("currency_pairs is not a list")
    out = []
    for entry in body:
        if not isinstance(entry, dict) or entry.get("trade_status") != "tradable":
            continue
        symbol = _symbol(entry.get("base"), entry.get("quote"))
        raw = entry.get("id")
        if symbol is None or not isinstance(raw, str):
            continue
        precision = _int(entry.get("precision"))
        amount_precision = _int(entry.get("amount_precision"))
        name = entry.get("base_name")
        out.append(
            Listing(
                exchange="gateio",
                symbol=symbol,
                exchange_symbol=raw,
                base=entry["base"],
                quote=entry["quote"],
                name=name[:100] if isinstance(name, str) and name else None,
                tick_size=Decimal(1).scaleb(-precision) if precision is not None else None,
                lot_size=Decimal(1).scaleb(-amount_precision) if amount_precision is not None else None,
                price_precision=precision,
                amount_precision=amount_precision,
            )
        )
    return out


async def fetch_binance(rest: ExchangeRest, budget: Budget) -> list[Listing]:
    body = await rest.get("/api/v3/exchangeInfo", None, budget=budget, cost=EXCHANGE_INFO_WEIGHT)
    return parse_binance_exchange_info(body)


async def fetch_gateio(rest: ExchangeRest, budget: Budget) -> list[Listing]:
    body = await rest.get("/spot/currency_pairs", None, budget=budget, cost=1)
    return parse_gateio_currency_pairs(body)


def load_seed(path: Path = SEED_FILE) -> dict[str, list[Listing]]:
    """The catalog shipped with the replay data (offline search): `{"pairs": [[base, quote,
    name, [exchanges]], ...]}`. Sizes are not in it; live mode reads them from the exchanges."""
    data = json.loads(path.read_text())
    out: dict[str, list[Listing]] = {"binance": [], "gateio": []}
    for base, quote, name, exchanges in data["pairs"]:
        symbol = f"{base}/{quote}"
        for exchange in exchanges:
            raw = base + quote if exchange == "binance" else f"{base}_{quote}"
            out[exchange].append(Listing(exchange, symbol, raw, base, quote, name=name or None))
    return out
