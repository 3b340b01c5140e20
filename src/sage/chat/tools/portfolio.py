"""Portfolio tools over the asking user's shadow portfolios (the default one unless the model
names another of the user's own by id or name; any other user's portfolio is "not found").

`get_portfolio` is the valued summary (positions, cash, equity, realized P&L, return on net
deposits), `get_trades` the newest transactions, `get_performance` the time-weighted return,
max drawdown and BTC benchmark over a range. Each reads through a small protocol that
`sage.portfolio.service.PortfolioService` satisfies, always with the caller's user id.
Results stay small: at most `MAX_TRADES` transactions, and the performance series is
reduced to at most `MAX_POINTS` points (the model needs the figures, not a chart).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sage.chat.grounding import Facts
from sage.chat.grounding.facts import PORTFOLIO, Subject
from sage.chat.grounding.facts import Field as FactField
from sage.chat.tools.base import Tool, ToolCaller, ToolError, ToolOutput
from sage.market.symbols import SymbolError, parse_symbol
from sage.portfolio.ledger import TransactionLike
from sage.portfolio.performance import Performance
from sage.portfolio.service import PortfolioSummary

MAX_TRADES = 50
MAX_POINTS = 32
NOTE_CHARS = 80

Range = Literal["1d", "1w", "1m", "3m", "1y", "all"]


class NamedPortfolio(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...


class PortfolioSource(Protocol):
    async def find(self, user_id: uuid.UUID, ref: str) -> NamedPortfolio | None:
        """One of the user's portfolios by id or name; None for anything else."""
        ...

    async def summary(self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None = None) -> PortfolioSummary | None: ...

    async def transactions(
        self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None = None, *, limit: int = 100, symbol: str | None = None
    ) -> Sequence[TransactionLike]:
        """Newest first."""
        ...

    async def performance(
        self, user_id: uuid.UUID, portfolio_id: uuid.UUID | None = None, range_: str = "1m"
    ) -> Performance | None: ...


PORTFOLIO_FIELD = Field(
    default=None,
    min_length=1,
    max_length=100,
    description="Which of the user's portfolios: its id or its name (e.g. 'Default'); the default one when omitted",
)


class PortfolioArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    portfolio: str | None = PORTFOLIO_FIELD


class TradesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    portfolio: str | None = PORTFOLIO_FIELD
    symbol: str | None = Field(
        default=None, min_length=1, max_length=41, description="Only this symbol's trades, e.g. 'BTC' or 'ETH/USDT'"
    )
    limit: int = Field(default=10, ge=1, le=MAX_TRADES, description="How many transactions, newest first")


class PerformanceArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    portfolio: str | None = PORTFOLIO_FIELD
    range: Range = Field(default="1m", description="1d, 1w, 1m (30 days), 3m, 1y or all (since the first activity)")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _pct(value: Decimal | None) -> str | None:
    return None if value is None else _dec(round(value, 4))


def _sampled(points: Sequence[Any], most: int) -> list[Any]:
    """At most `most` points, evenly spread, always keeping the first and the last."""
    if len(points) <= most:
        return list(points)
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


class PortfolioTools:
    def __init__(self, portfolio: PortfolioSource) -> None:
        self.portfolio = portfolio

    def tools(self) -> list[Tool[Any]]:
        return [
            Tool(
                "get_portfolio",
                "The asking user's shadow portfolio (a paper-trading ledger): cash, per position the quantity, "
                "average cost, current price, value, unrealized P&L and weight, and the totals: holdings value, "
                "equity (cash + holdings), realized P&L, fees paid and total return on net deposits, valued at "
                "live consolidated prices.",
                PortfolioArgs,
                self.get_portfolio,
            ),
            Tool(
                "get_trades",
                f"The asking user's latest shadow-portfolio transactions (buy, sell, deposit, withdraw), newest "
                f"first, with quantity, price, fee and time; optionally one symbol's only. At most {MAX_TRADES}.",
                TradesArgs,
                self.get_trades,
            ),
            Tool(
                "get_performance",
                "How the asking user's shadow portfolio performed over a range: time-weighted return (deposits and "
                "withdrawals do not count), maximum drawdown, and the return of holding BTC/USDT over the same "
                "period (the benchmark), with a coarse value series.",
                PerformanceArgs,
                self.get_performance,
            ),
        ]

    async def _chosen(self, ref: str | None, caller: ToolCaller) -> NamedPortfolio | None:
        """The portfolio the model named (None: the default); a name or id that is not one of
        the asking user's portfolios is refused the same way whoever owns it."""
        if ref is None:
            return None
        found = await self.portfolio.find(caller.user_id, ref)
        if found is None:
            raise ToolError(f"portfolio {ref!r} not found among the user's portfolios")
        return found

    async def get_portfolio(self, args: PortfolioArgs, caller: ToolCaller) -> ToolOutput:
        chosen = await self._chosen(args.portfolio, caller)
        summary = await self.portfolio.summary(caller.user_id, chosen.id if chosen else None)
        if summary is None:
            return ToolOutput({"positions": [], "note": "the user has no portfolio yet"}, "no portfolio")
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
            "portfolio": summary.name,
            "base_currency": summary.base_currency,
            "cash": _dec(summary.cash),
            "positions": positions,
            "holdings_value": _dec(summary.total_value),
            "holdings_cost": _dec(summary.total_cost),
            "unrealized_pnl": _dec(summary.total_pnl),
            "unrealized_pnl_pct": _dec(summary.total_pnl_pct),
            "equity": _dec(summary.equity),
            "realized_pnl": _dec(summary.realized_pnl),
            "fees_paid": _dec(summary.fees_paid),
            "net_deposits": _dec(summary.net_deposits),
            "total_return": _dec(summary.total_return),
            "total_return_pct": _dec(summary.total_return_pct),
            "priced_all": summary.priced_all,
            "as_of": summary.as_of.isoformat(),
        }

        def ground(facts: Facts) -> None:
            facts.add_portfolio(summary)

        held = f"{len(positions)} position{'s' if len(positions) != 1 else ''}"
        return ToolOutput(data, f"{held}, cash {summary.cash:.2f}, equity {summary.equity:.2f}", ground)

    async def get_trades(self, args: TradesArgs, caller: ToolCaller) -> ToolOutput:
        symbol: str | None = None
        if args.symbol is not None:
            try:
                symbol = parse_symbol(args.symbol)
            except SymbolError:
                raise ToolError(f"{args.symbol!r} is not a symbol (write it like BTC, BTC/USDT or ETHUSDT)") from None
        chosen = await self._chosen(args.portfolio, caller)
        rows = list(
            await self.portfolio.transactions(
                caller.user_id, chosen.id if chosen else None, limit=args.limit, symbol=symbol
            )
        )
        transactions = [
            {
                "kind": t.kind,
                "symbol": t.symbol,
                "quantity": _dec(t.quantity),
                "price": _dec(t.price),
                "fee": _dec(t.fee),
                "executed_at": t.executed_at.isoformat(),
                "note": None if t.note is None else t.note[:NOTE_CHARS],
            }
            for t in rows
        ]
        data: dict[str, Any] = {"transactions": transactions, "order": "newest first"}
        if chosen is not None:
            data["portfolio"] = chosen.name
        if symbol is not None:
            data["symbol"] = symbol
        if not rows:
            data["note"] = "no transactions" + (f" in {symbol}" if symbol else "")

        def ground(facts: Facts) -> None:
            for t in rows:
                if t.symbol is None or t.price is None:  # a deposit or withdrawal: the amount moved
                    facts.add(PORTFOLIO, FactField.CASH, t.quantity, time=t.executed_at, source="get_trades")
                    continue
                subject = Subject.position(t.symbol)
                facts.add(subject, FactField.QUANTITY, t.quantity, time=t.executed_at, source="get_trades")
                facts.add(subject, FactField.PRICE, t.price, time=t.executed_at, source="get_trades")
                facts.add(
                    subject,
                    FactField.VALUE,
                    t.quantity * t.price,
                    time=t.executed_at,
                    source="get_trades",
                    derived=True,
                )

        what = f"{len(rows)} transaction{'s' if len(rows) != 1 else ''}" + (f" in {symbol}" if symbol else "")
        return ToolOutput(data, what, ground)

    async def get_performance(self, args: PerformanceArgs, caller: ToolCaller) -> ToolOutput:
        chosen = await self._chosen(args.portfolio, caller)
        result = await self.portfolio.performance(caller.user_id, chosen.id if chosen else None, range_=args.range)
        if result is None:
            return ToolOutput({"range": args.range, "note": "the user has no portfolio yet"}, "no portfolio")
        valued = [p for p in result.points if p.value is not None]
        series = [
            {"at": p.at.isoformat(), "value": _dec(round(p.value, 2)) if p.value is not None else None}
            | {"benchmark_value": None if p.benchmark_value is None else _dec(round(p.benchmark_value, 2))}
            for p in _sampled(result.points, MAX_POINTS)
        ]
        data = {
            **({"portfolio": chosen.name} if chosen is not None else {}),
            "range": result.range,
            "start": result.start.isoformat(),
            "end": result.end.isoformat(),
            "time_weighted_return_pct": _pct(result.time_weighted_return_pct),
            "max_drawdown_pct": _pct(result.max_drawdown_pct),
            "benchmark_symbol": result.benchmark_symbol,
            "benchmark_return_pct": _pct(result.benchmark_return_pct),
            "start_value": None if not valued else _dec(round(valued[0].value or Decimal(0), 2)),
            "end_value": None if not valued else _dec(round(valued[-1].value or Decimal(0), 2)),
            "complete": result.complete,
            "missing": [
                {"symbol": g.symbol, "from": g.start.isoformat(), "to": g.end.isoformat()} for g in result.missing[:5]
            ],
            "series": series,
        }

        def ground(facts: Facts) -> None:
            facts.add_performance(
                return_pct=result.time_weighted_return_pct,
                drawdown_pct=result.max_drawdown_pct,
                benchmark_symbol=result.benchmark_symbol,
                benchmark_return_pct=result.benchmark_return_pct,
            )

        twr = result.time_weighted_return_pct
        summary = f"{args.range} performance: " + ("return unknown" if twr is None else f"return {twr:+.2f}%")
        if result.benchmark_return_pct is not None:
            summary += f", {result.benchmark_symbol} {result.benchmark_return_pct:+.2f}%"
        return ToolOutput(data, summary, ground)
