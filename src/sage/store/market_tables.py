"""Market history: one-minute candles per exchange and symbol, and the Fear & Greed
index. Latest tickers live in Valkey only (they are worth seconds, not rows)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from sage.store.base import Base


class CandleRow(Base):
    """Unique on (exchange, symbol, interval, start): the primary key. Live bars are `1m`;
    bars backfilled from the exchanges' REST APIs are `1m`, `1h` or `1d` (larger intervals
    are aggregated from those). Prices are NUMERIC without a fixed scale so a 0.00000123
    meme coin and a 100 000 USDT bitcoin both stay exact."""

    __tablename__ = "market_candles"

    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(41), primary_key=True)
    interval: Mapped[str] = mapped_column(String(4), primary_key=True, server_default="1m")
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    open: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    high: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    low: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    close: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    volume: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    ticks: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (Index("ix_market_candles_start", "start"),)


class CandleEpoch(Base):
    """One row, bumped by the triggers of migration 0016 whenever a statement writes a candle
    into a past step: what a reader storing performance points checks it valued them under
    (sage.portfolio.points)."""

    __tablename__ = "market_candle_epoch"

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=true())
    epoch: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    __table_args__ = (CheckConstraint("id", name="one_row"),)


class FearGreedRow(Base):
    __tablename__ = "market_fear_greed"

    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    value: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    classification: Mapped[str] = mapped_column(String(32), nullable=False)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (CheckConstraint("value BETWEEN 0 AND 100", name="value_range"),)
