"""Where the tick -> alert -> SSE latency goes, phase by phase.

Runs `bench.bench_alerts.tick_to_stream` (same setup: 10,000 pending alerts on 50 symbols,
default settings, the other symbols ticking every 100 ms) with timestamps taken around the
checker's steps, and prints per-phase percentiles of the measured rounds:

  rx        the tick submitted to the pipeline -> the checker's subscription receives its batch
  wait      -> the pass that fires the round's alert starts (the pass spacing, a pass
               already running, or a later pass when the first missed it)
  watched   -> the tick pass's session and its query for the watched symbols are done
  price     -> the `consolidated` read of the watched symbols (Valkey)
  db        -> the UPDATE that arms and fires, the notification INSERT and the commit
  publish   -> the notification PUBLISHed on Valkey
  dispatch  -> the API task's hub receives it (negative: before the PUBLISH call returned)
  sse       -> the event is read from the SSE stream by the client

Run: python -m bench.profile_alerts [--rounds N]. The hooks wrap functions, they change nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

Event = tuple[float, str, set[str]]
EVENTS: list[Event] = []
MEASURED_FROM = 102  # the benchmark's measured ticks are at 102 and above, its noise near 100


def note(name: str, symbols: Iterable[str] = ()) -> None:
    EVENTS.append((time.perf_counter(), name, set(symbols)))


def install() -> None:
    import sage.alerts.checker as checker
    from sage.alerts.service import PriceAlertService
    from sage.market.pipeline import MarketPipeline
    from sage.notifications.live import NotificationHub

    submit, ticked, fresh, dispatch = (
        MarketPipeline.submit,
        checker.AlertChecker.ticked,
        PriceAlertService._fresh_prices,
        NotificationHub.dispatch,
    )

    def timed_submit(self: Any, tick: Any) -> None:
        if tick.last >= MEASURED_FROM:
            note("tick", [tick.symbol])
        submit(self, tick)

    def timed_ticked(self: Any, symbols: Iterable[str]) -> None:
        symbols = set(symbols)
        note("rx", symbols)
        ticked(self, symbols)

    async def timed_check(service: Any, hub: Any, symbols: Iterable[str]) -> int:
        symbols = set(symbols)
        note("pass", symbols)
        result = await service.evaluate_symbols(symbols)
        note("evaluated", ["fired"] if result.fired else [])
        count = await checker._publish(result, hub)
        note("published")
        return count

    async def timed_fresh(self: Any, symbols: Any) -> Any:
        note("watched")
        prices = await fresh(self, symbols)
        note("priced")
        return prices

    def timed_dispatch(self: Any, payload: bytes) -> None:
        note("dispatch")
        dispatch(self, payload)

    MarketPipeline.submit = timed_submit  # type: ignore[method-assign]
    checker.AlertChecker.ticked = timed_ticked  # type: ignore[method-assign]
    checker.check_ticked = timed_check
    PriceAlertService._fresh_prices = timed_fresh  # type: ignore[method-assign]
    NotificationHub.dispatch = timed_dispatch  # type: ignore[method-assign]


def phases(stream: list[float]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {
        k: [] for k in ("rx", "wait", "watched", "price", "db", "publish", "dispatch", "sse", "total")
    }
    ticks = [(i, e) for i, e in enumerate(EVENTS) if e[1] == "tick"]
    for measured, (i, (t0, _, symbols)) in zip(stream, ticks, strict=False):

        def first(name: str, start: int, symbol: str | None = None) -> tuple[int, float]:
            for j in range(start, len(EVENTS)):
                at, kind, seen = EVENTS[j]
                if kind == name and (symbol is None or symbol in seen):
                    return j, at
            raise LookupError(name)

        symbol = next(iter(symbols))
        try:
            j, rx = first("rx", i, symbol)
            k, start = first("pass", j, symbol)
            # the pass that fired the round's alert (passes run one at a time)
            while "fired" not in EVENTS[first("evaluated", k)[0]][2]:
                k, _ = first("pass", k + 1, symbol)
            start = EVENTS[k][0]
            at = {name: first(name, k)[1] for name in ("watched", "priced", "evaluated", "published", "dispatch")}
        except LookupError:
            continue
        marks = [t0, rx, start, at["watched"], at["priced"], at["evaluated"], at["published"], at["dispatch"]]
        marks.append(t0 + measured / 1000)
        for name, a, b in zip(list(out)[:-1], marks, marks[1:], strict=False):
            out[name].append((b - a) * 1000)
        out["total"].append(measured)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from bench._support import stores
    from bench.bench_alerts import pct, tick_to_stream

    install()
    with stores() as urls, tempfile.TemporaryDirectory() as data_dir:
        stream, baseline = asyncio.run(tick_to_stream(urls.database_url, urls.valkey_url, args.rounds, Path(data_dir)))
    print(f"\nTick -> SSE by phase, {args.rounds} rounds (ms):")
    for name, values in phases(stream).items():
        if values:
            print(
                f"  {name:<9} p50 {pct(values, 0.5):8.2f}   p90 {pct(values, 0.9):8.2f}"
                f"   p99 {pct(values, 0.99):8.2f}   max {max(values):8.2f}"
            )
    print(f"  baseline: tick -> Valkey p50 {pct(baseline, 0.5):.2f}, p99 {pct(baseline, 0.99):.2f}")


if __name__ == "__main__":
    main()
