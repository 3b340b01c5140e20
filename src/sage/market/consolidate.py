"""One price per symbol across exchanges.

- A ticker is stale when its exchange event time is older than `stale_after` seconds.
- The price is the median of the fresh exchanges' last prices (the mean of two); when
  every exchange is stale, the freshest price is served, marked `stale`, never as fresh.
- `diverged` compares every exchange present, stale ones included: a frozen or broken
  feed shows itself as a price that drifts away from the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from statistics import median

from sage.market.models import ConsolidatedPrice, Ticker

_HUNDRED = Decimal(100)


def is_stale(ticker: Ticker, now: datetime, stale_after: float) -> bool:
    return (now - ticker.event_time).total_seconds() > stale_after


def spread_percent(prices: list[Decimal]) -> Decimal:
    low = min(prices)
    if low <= 0:
        return Decimal(0)
    return (max(prices) - low) / low * _HUNDRED


def consolidate(
    symbol: str,
    tickers: Mapping[str, Ticker],
    *,
    now: datetime,
    stale_after: float,
    divergence_percent: float,
) -> ConsolidatedPrice | None:
    if not tickers:
        return None
    fresh = {name: t for name, t in tickers.items() if not is_stale(t, now, stale_after)}
    if fresh:
        used = list(fresh.values())
        price = median([t.last for t in used])
    else:
        newest = max(tickers.values(), key=lambda t: t.event_time)
        used = [newest]
        price = newest.last
    changes = [t.change_pct for t in used]
    change = (sum(changes, Decimal(0)) / len(changes)) if changes else None
    spread = spread_percent([t.last for t in tickers.values()])
    return ConsolidatedPrice(
        symbol=symbol,
        price=price,
        change_pct_24h=change,
        as_of=max(t.event_time for t in used),
        stale=not fresh,
        diverged=len(tickers) > 1 and spread > Decimal(str(divergence_percent)),
        exchanges=dict(sorted(tickers.items())),
        spread_pct=spread,
    )
