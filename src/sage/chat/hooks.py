"""Runtime hook: the chat service in runtime.services["chat"], stopped before the stores."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from sage.chat.providers import build_model
from sage.chat.service import ChatService
from sage.portfolio.prices import MarketReader
from sage.portfolio.service import PortfolioService
from sage.runtime import START_HOOKS

if TYPE_CHECKING:
    from sage.runtime import Runtime


async def start_chat(runtime: Runtime, stack: AsyncExitStack) -> None:
    def market() -> MarketReader | None:
        return runtime.services.get("market")

    portfolio = runtime.services.get("portfolio")
    if not isinstance(portfolio, PortfolioService):
        portfolio = PortfolioService(runtime.db, market)
        runtime.services["portfolio"] = portfolio
    service = ChatService(
        settings=runtime.settings,
        db=runtime.db,
        cache=runtime.cache,
        metrics=runtime.metrics,
        limiter=runtime.limiter,
        model=build_model(runtime.settings),
        market=market,
        portfolio=portfolio,
    )
    runtime.services["chat"] = service
    stack.push_async_callback(service.close)


START_HOOKS.append(start_chat)
