"""Runtime hook: the portfolio service in runtime.services["portfolio"]."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from sage.portfolio.prices import MarketReader
from sage.portfolio.service import PortfolioService
from sage.runtime import START_HOOKS

if TYPE_CHECKING:
    from sage.runtime import Runtime


async def start_portfolio(runtime: Runtime, stack: AsyncExitStack) -> None:
    def market() -> MarketReader | None:
        return runtime.services.get("market")

    # the chat hook may have created it already (hook order follows sage.hooks' imports)
    runtime.services.setdefault("portfolio", PortfolioService(runtime.db, market))


START_HOOKS.append(start_portfolio)
