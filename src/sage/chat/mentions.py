"""Which symbols a question names: pairs, configured bases, coin names, well-known tickers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sage.market.symbols import KNOWN_QUOTES

# Names people use for the common coins, in English and Korean (the original users).
COIN_ALIASES = {
    "BITCOIN": "BTC",
    "ETHEREUM": "ETH",
    "ETHER": "ETH",
    "SOLANA": "SOL",
    "RIPPLE": "XRP",
    "DOGECOIN": "DOGE",
    "CARDANO": "ADA",
    "비트코인": "BTC",
    "이더리움": "ETH",
    "솔라나": "SOL",
    "리플": "XRP",
    "도지코인": "DOGE",
    "바이낸스코인": "BNB",
}
# Tickers recognised when written in capitals even if not configured ("LINK", not "link").
WELL_KNOWN_TICKERS = frozenset(
    [
        "BTC",
        "ETH",
        "SOL",
        "XRP",
        "BNB",
        "DOGE",
        "ADA",
        "TRX",
        "AVAX",
        "DOT",
        "LINK",
        "TON",
        "SHIB",
        "LTC",
        "BCH",
        "NEAR",
        "UNI",
        "APT",
        "ARB",
        "OP",
        "SUI",
        "PEPE",
        "ATOM",
        "XLM",
        "ETC",
        "FIL",
        "ICP",
        "HBAR",
        "POL",
        "MATIC",
    ]
)
_PAIR = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z0-9]{2,12}?)([/_\-:]?)(" + "|".join(KNOWN_QUOTES) + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_CASH = frozenset({"USDT", "USDC", "USD", "BUSD", "FDUSD", "TUSD", "KRW", "EUR"})
_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]{1,11}(?![A-Za-z0-9])")


def symbol_mentions(text: str, known: Sequence[str]) -> list[tuple[int, int, str]]:
    """Every place `text` names a symbol: (start, end, BASE/QUOTE), in order of position.

    Bare words count only when they are a configured base, a known coin name, or a
    well-known ticker in capitals, so words like "AI", "OK" or "link" never become symbols.
    Korean names match inside words, because Korean attaches particles to nouns (비트코인은,
    이더리움이).
    """
    by_base = {s.split("/")[0]: s for s in known}
    hits: list[tuple[int, int, str]] = []
    for match in _PAIR.finditer(text):
        token, base, separator, quote = match.group(0), match.group(1).upper(), match.group(2), match.group(3).upper()
        if base in _CASH:
            continue  # "USDTUSD" and the like are not coins
        if separator or token.isupper() or base in by_base:
            hits.append((match.start(), match.end(), f"{base}/{quote}"))
    for match in _WORD.finditer(text):
        word = match.group(0).upper()
        base = COIN_ALIASES.get(word, word)
        if any(a <= match.start() < b for a, b, _ in hits):
            continue  # the base of a pair already found
        if base in by_base:
            hits.append((match.start(), match.end(), by_base[base]))
        elif word in COIN_ALIASES or (word in WELL_KNOWN_TICKERS and match.group(0).isupper()):
            hits.append((match.start(), match.end(), f"{base}/USDT"))
    for alias, base in COIN_ALIASES.items():
        if not alias.isascii():
            for found in re.finditer(re.escape(alias), text):
                hits.append((found.start(), found.end(), by_base.get(base, f"{base}/USDT")))
    return sorted(hits)


def mentioned_symbols(text: str, known: Sequence[str]) -> list[str]:
    """Symbols a question names: pairs (`ETHUSDT`, `eth/usdt`), known bases (`btc`), coin names.

    Order of first mention is kept (see `symbol_mentions` for what counts as a mention).
    """
    found: list[str] = []
    for _, _, symbol in symbol_mentions(text, known):
        if symbol not in found:
            found.append(symbol)
    return found
