"""Symbol-list normalisation (`MarketService._normalize`, behind `/market/tickers?symbols=`).

The issue measured 2.5 s for one request with 10,000 symbols: de-duplication by a `not in`
scan of the output list made the work quadratic. The API now refuses more than 100 symbols,
and the normalisation is linear (an ordered dict). Printed beside the baseline, the old
list-scan de-duplication, measured in the same run on the same input.

Run: .venv/bin/python -m bench.bench_symbols [--symbols N]
"""

from __future__ import annotations

import argparse
import time
import typing
from collections.abc import Callable, Sequence

from sage.market.service import MarketService
from sage.market.symbols import SymbolError, parse_symbol


def quadratic_baseline(symbols: Sequence[str]) -> list[str]:
    """The normalisation as it was (a `not in` scan of the list built so far)."""
    out: list[str] = []
    for raw in symbols:
        try:
            symbol = parse_symbol(raw)
        except SymbolError:
            continue
        if symbol not in out:
            out.append(symbol)
    return out


def timed(fn: Callable[[Sequence[str]], list[str]], symbols: Sequence[str], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn(symbols)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=10_000)
    count = parser.parse_args().symbols
    service = typing.cast(MarketService, object.__new__(MarketService))  # _normalize needs no state

    def linear(symbols: Sequence[str]) -> list[str]:
        return MarketService._normalize(service, symbols)

    for n in (100, count):
        symbols = [f"C{i}/USDT" for i in range(n)]
        assert linear(symbols) == quadratic_baseline(symbols)
        base, now = timed(quadratic_baseline, symbols), timed(linear, symbols)
        print(f"{n:>6} symbols   baseline (list scan) {base:9.2f} ms   now (ordered dict) {now:9.2f} ms")


if __name__ == "__main__":
    main()
