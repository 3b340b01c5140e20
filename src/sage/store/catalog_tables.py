"""The symbol catalog: every pair each exchange lists, as last read from its REST API.

One row per (exchange, symbol). A refresh replaces one exchange's rows in one transaction
and only when the exchange answered with a plausible list, so a failed or truncated
refresh never empties the catalog.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, Index, Numeric, SmallInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

from sage.store.base import Base


class MarketSymbolRow(Base):
    __tablename__ = "market_symbols"

    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(41), primary_key=True)  # BASE/QUOTE
    exchange_symbol: Mapped[str] = mapped_column(String(64), nullable=False)  # BTCUSDT, BTC_USDT
    base: Mapped[str] = mapped_column(String(20), nullable=False)
    quote: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str | None] = mapped_column(String(100))  # the base asset's name, where the exchange gives one
    tick_size: Mapped[Decimal | None] = mapped_column(Numeric)
    lot_size: Mapped[Decimal | None] = mapped_column(Numeric)
    price_precision: Mapped[int | None] = mapped_column(SmallInteger)
    amount_precision: Mapped[int | None] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (Index("ix_market_symbols_symbol", "symbol"),)
