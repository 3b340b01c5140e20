"""Small helpers shared by the market tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sage.market.models import Ticker


@asynccontextmanager
async def background(coro: Coroutine[Any, Any, Any]) -> AsyncIterator[asyncio.Task[Any]]:
    """Run `coro` as a task for the duration of the block, then cancel it."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def ticker(
    symbol: str = "BTC/USDT",
    last: str = "97000.5",
    *,
    exchange: str = "binance",
    at: datetime | None = None,
    age: float = 0.0,
    base_volume: str = "1000",
) -> Ticker:
    event = (at or datetime.now(UTC)) - timedelta(seconds=age)
    price = Decimal(last)
    return Ticker(
        exchange=exchange,
        symbol=symbol,
        last=price,
        bid=price,
        ask=price,
        change_pct=Decimal("1.5"),
        high=price * 2,
        low=price / 2,
        base_volume=Decimal(base_volume),
        quote_volume=Decimal(base_volume) * price,
        event_time=event,
        received_at=event,
    )
