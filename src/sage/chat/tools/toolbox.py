"""The chat's tool set, assembled from its groups by the composition root."""

from __future__ import annotations

from sage.chat.tools.alerts import AlertBook, AlertTools
from sage.chat.tools.base import ToolBox
from sage.chat.tools.calculate import calculate_tool
from sage.chat.tools.market import CandleSource, FearGreedHistory, MarketTools
from sage.chat.tools.portfolio import PortfolioSource, PortfolioTools
from sage.market.reader import MarketReader, SymbolValidator

MAX_RESULT_CHARS = 24_000  # ~6k tokens: a 200-bar candle table fits, a runaway result does not


def build_toolbox(
    *,
    prices: MarketReader,
    symbols: SymbolValidator,
    candles: CandleSource,
    fear_greed: FearGreedHistory,
    portfolio: PortfolioSource,
    alerts: AlertBook,
    history_days: int,
    timeout: float,
) -> ToolBox:
    market = MarketTools(
        prices=prices, symbols=symbols, candles=candles, fear_greed=fear_greed, history_days=history_days
    )
    return ToolBox(
        [
            *market.tools(),
            *PortfolioTools(portfolio).tools(),
            *AlertTools(alerts).tools(),
            calculate_tool(),
        ],
        timeout=timeout,
        max_result_chars=MAX_RESULT_CHARS,
    )
