"""Grounding check cost per answer, beside a baseline measured in the same run.

The check runs once per answer, when it is saved. Measured: `check_answer` on a typical
answer (the offline provider's market overview, 16 figures) over (a) the chat context's
facts and (b) the same plus a 30-day hourly candle tool result (720 bars, ~3,700 facts),
and on a long answer (60 figures) over (b); each run on a fresh copy of the facts (no warm
caches). Baseline: reading the figures alone (`find_numbers` on the same text), the floor
any checker pays.

Run: .venv/bin/python -m bench.bench_grounding [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sage.chat.grounding import Facts, check_answer
from sage.chat.grounding.numbers import find_numbers
from tests.chat.grounding_facts import NOW, Bar, corpus_facts

OVERVIEW = (
    "Over 24 hours the strongest is SOL/USDT (+5.20%) and the weakest is ETH/USDT (-1.25%).\n"
    "BTC/USDT is at 97,250.50 USDT, up 2.31% over 24 hours (as of 2026-11-22 09:59:58 UTC).\n"
    "ETH/USDT is at 3,413.28 USDT, down 1.25% over 24 hours (as of 2026-11-22 09:59:58 UTC).\n"
    "SOL/USDT is at 187.65 USDT, up 5.20% over 24 hours (as of 2026-11-22 09:59:58 UTC).\n"
    "The Crypto Fear & Greed Index is 72 (Greed) as of 2026-11-22 09:59:58 UTC.\n"
    "Your shadow portfolio is worth 55,451.81 against a cost of 38,000.00: P&L +17,451.81 (+45.93%)."
)


def _with_candles() -> Facts:
    facts = corpus_facts()
    bars = [
        Bar(
            NOW - timedelta(hours=h),
            Decimal(90000 + h),
            Decimal(91000 + h),
            Decimal(89000 + h),
            Decimal(90500 + h),
            Decimal(100 + h),
        )
        for h in range(720)
    ]
    facts.add_candles("ETH/USDT", bars)
    return facts


def _time(call: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{name:<46} min {ordered[0]:7.3f} ms   p50 {statistics.median(samples):7.3f} ms   p99 {p99:7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    small, large = corpus_facts(), _with_candles()
    long_answer = "\n".join([OVERVIEW] * 4)
    print(f"facts: context {len(small)}, with 720 candles {len(large)}")
    print(_row("baseline: find_numbers(overview)", _time(lambda: find_numbers(OVERVIEW), args.repeat)))
    print(
        _row("check_answer(overview, context facts)", _time(lambda: check_answer(OVERVIEW, small.copy()), args.repeat))
    )
    print(
        _row("check_answer(overview, + 720 candles)", _time(lambda: check_answer(OVERVIEW, large.copy()), args.repeat))
    )
    print(_row("baseline: find_numbers(long answer)", _time(lambda: find_numbers(long_answer), args.repeat)))
    print(
        _row(
            "check_answer(long answer, + 720 candles)",
            _time(lambda: check_answer(long_answer, large.copy()), args.repeat),
        )
    )


if __name__ == "__main__":
    main()
