"""Symbols as users and exchanges write them, normalized to "BASE/QUOTE".

Accepted: `BTC` (quote defaults to USDT), `BTCUSDT`, `BTC/USDT`, `btc_usdt`, `BTC-USDT`.
A glued form (`ETHBTC`) is split on the longest known quote asset it ends with.
"""

from __future__ import annotations

import re

DEFAULT_QUOTE = "USDT"
# Longest first, so "BTCFDUSD" splits as BTC/FDUSD and not BTCFD/USD.
KNOWN_QUOTES: tuple[str, ...] = tuple(
    sorted(
        (
            "USDT",
            "USDC",
            "FDUSD",
            "TUSD",
            "BUSD",
            "DAI",
            "USD",
            "EUR",
            "TRY",
            "BRL",
            "JPY",
            "KRW",
            "BTC",
            "ETH",
            "BNB",
        ),
        key=len,
        reverse=True,
    )
)
_ASSET = re.compile(r"^[A-Z0-9]{1,20}$")
_SEPARATORS = re.compile(r"[/_\-:]")


class SymbolError(ValueError):
    """Not a symbol Sage can read; the message names the input."""


def parse_symbol(raw: str, *, default_quote: str = DEFAULT_QUOTE) -> str:
    text = raw.strip().upper()
    if not text or len(text) > 41:
        raise SymbolError(f"{raw!r} is not a symbol")
    parts = _SEPARATORS.split(text)
    if len(parts) == 2:
        base, quote = parts
    elif len(parts) == 1:
        base, quote = _split_glued(text, default_quote)
    else:
        raise SymbolError(f"{raw!r} is not a symbol")
    if not (_ASSET.match(base) and _ASSET.match(quote)):
        raise SymbolError(f"{raw!r} is not a symbol")
    return f"{base}/{quote}"


def _split_glued(text: str, default_quote: str) -> tuple[str, str]:
    for quote in KNOWN_QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    return text, default_quote


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote
