"""Orders before booking: the symbol checked, a market order priced at the consolidated price
(refused when that price is stale, diverged or missing), the default fee computed.

This runs outside the portfolio's lock: the market call must not hold other writers up.
"""

from __future__ import annotations

import decimal
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sage.market.reader import MarketReader, PriceQuote, SymbolValidator
from sage.portfolio.book import FEE_QUANTUM, MAX_AMOUNT, PriceRefused, TradeRequest, checked_time, invalid_field
from sage.portfolio.ledger import PRECISION


async def prepare_order(
    request: TradeRequest, symbols: SymbolValidator, market: MarketReader, fee_rate: Decimal, now: datetime
) -> TradeRequest:
    """Validate and complete a request outside any lock: symbol known, market price and
    time filled in for a market order, the default fee computed."""
    if request.kind in ("deposit", "withdraw"):
        if request.symbol is not None or request.price is not None:
            raise invalid_field("symbol", f"a {request.kind} has no symbol or price")
        if request.fee not in (None, Decimal(0)):
            raise invalid_field("fee", f"a {request.kind} has no fee")
        return TradeRequest(
            request.kind,
            request.quantity,
            None,
            None,
            checked_time(request.executed_at, now),
            Decimal(0),
            request.note,
        )
    if request.kind not in ("buy", "sell"):
        raise invalid_field("kind", "kind must be buy, sell, deposit or withdraw")
    if request.symbol is None:
        raise invalid_field("symbol", f"a {request.kind} needs a symbol")
    symbol = await symbols.require(request.symbol)
    price, executed_at = request.price, request.executed_at
    if price is None:
        if executed_at is not None:
            raise invalid_field("price", "a trade recorded in the past needs its price")
        quote = await fill_price(market, symbol)
        price, executed_at = quote.price, now
    executed_at = checked_time(executed_at, now)
    with decimal.localcontext(prec=PRECISION):  # exact products; quantize cannot overflow the context
        notional = request.quantity * price
        if notional >= MAX_AMOUNT:
            raise invalid_field("quantity", "the trade's notional (quantity x price) is too large")
        fee = request.fee
        if fee is None:
            fee = (notional * fee_rate).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)
    return TradeRequest(request.kind, request.quantity, symbol, price, executed_at, fee, request.note)


async def fill_price(market: MarketReader, symbol: str) -> PriceQuote:
    try:
        quotes = await market.consolidated([symbol])
    except Exception as exc:
        raise PriceRefused(f"No price for {symbol} right now: market data is unavailable") from exc
    quote = next((q for q in quotes if q.symbol == symbol), None)
    if quote is None:
        raise PriceRefused(f"No current price for {symbol}; a market order cannot fill")
    if quote.stale:
        raise PriceRefused(
            f"The price of {symbol} is stale (last tick {quote.as_of.isoformat()}); a market order cannot fill",
            details={"symbol": symbol, "as_of": quote.as_of.isoformat(), "reason": "stale"},
        )
    if quote.diverged:
        raise PriceRefused(
            f"Exchanges disagree on the price of {symbol}; a market order cannot fill until they agree",
            details={"symbol": symbol, "reason": "diverged"},
        )
    return quote
