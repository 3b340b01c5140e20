"""Portfolio tools over the asking user's shadow portfolio (behind a small protocol).

Only `get_portfolio` today: the portfolio service offers positions and their summary.
When the ledger lands (trades, performance over a range), `get_trades` /
`get_performance` plug in here as further tools over a wider protocol.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from sage.chat.grounding import Facts
from sage.chat.tools.base import Tool, ToolCaller, ToolOutput
from sage.portfolio.service import PortfolioSummary


class PortfolioSource(Protocol):
    async def summary(self, user_id: uuid.UUID) -> PortfolioSummary | None: ...


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


class PortfolioTools:
    def __init__(self, portfolio: PortfolioSource) -> None:
        self.portfolio = portfolio

    def tools(self) -> list[Tool[Any]]:
        return [
            Tool(
                "get_portfolio",
                "The asking user's shadow portfolio (paper positions): per position the quantity, average cost, "
                "current price, value, P&L and weight, and the totals, valued at live consolidated prices.",
                NoArgs,
                self.get_portfolio,
            )
        ]

    async def get_portfolio(self, args: NoArgs, caller: ToolCaller) -> ToolOutput:
        summary = await self.portfolio.summary(caller.user_id)
        if summary is None:
            return ToolOutput({"positions": [], "note": "the user holds no positions"}, "no positions")
        positions = [
            {
                "symbol": p.symbol,
                "quantity": _dec(p.quantity),
                "average_cost": _dec(p.average_cost),
                "cost": _dec(p.cost),
                "price": _dec(p.price),
                "value": _dec(p.value),
                "pnl": _dec(p.pnl),
                "pnl_pct": _dec(p.pnl_pct),
                "weight_pct": _dec(p.weight_pct),
                "stale": p.stale,
            }
            for p in summary.positions
        ]
        data = {
            "positions": positions,
            "total_value": _dec(summary.total_value),
            "total_cost": _dec(summary.total_cost),
            "total_pnl": _dec(summary.total_pnl),
            "total_pnl_pct": _dec(summary.total_pnl_pct),
            "priced_all": summary.priced_all,
            "as_of": summary.as_of.isoformat(),
        }

        def ground(facts: Facts) -> None:
            facts.add_portfolio(summary)

        return ToolOutput(data, f"{len(positions)} positions, value {summary.total_value:.2f}", ground)
