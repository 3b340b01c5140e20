"""Alerts users set on the market (price levels, percentage moves, Fear & Greed) and on their portfolios."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from sage.store.base import Base


class MarketAlert(Base):
    __tablename__ = "market_alerts"
    __table_args__ = (
        # The evaluator reads only active alerts of one kind, joined on the symbol.
        Index("ix_market_alerts_active", "kind", "symbol", postgresql_where=text("status = 'active'")),
        # A price pass reads only the alerts that change state: per symbol, a range of thresholds
        # for each (kind, armed) (see sage.alerts.evaluation).
        Index(
            "ix_market_alerts_crossing",
            "symbol",
            "kind",
            "armed",
            "threshold",
            postgresql_where=text("status = 'active'"),
        ),
        # ... and portfolio alerts by the portfolio they value.
        Index("ix_market_alerts_portfolio", "portfolio_id", postgresql_where=text("portfolio_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(24), nullable=False)  # sage.alerts.conditions.Kind
    symbol: Mapped[str | None] = mapped_column(String(32))  # None for Fear & Greed and portfolio alerts
    # Portfolio alerts: the user's portfolio they value (deleting it deletes them)
    portfolio_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("portfolios.id", ondelete="CASCADE")
    )
    # portfolio_return_below: the highest value seen while active (the drawdown is measured from it)
    peak_value: Mapped[Decimal | None] = mapped_column(Numeric(38, 18))
    threshold: Mapped[Decimal] = mapped_column(Numeric(38, 18), nullable=False)
    direction: Mapped[str | None] = mapped_column(String(8))  # change_pct: up | down | either
    change_window: Mapped[str | None] = mapped_column(String(4))  # change_pct: 5m | 1h | 4h | 24h
    repeat: Mapped[str] = mapped_column(String(8), nullable=False, default="once")  # once | every
    cooldown_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=3600)
    note: Mapped[str | None] = mapped_column(String(280))
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="active")  # active|paused|triggered
    # True once a fresh reading was seen on the non-firing side: an alert fires on a crossing.
    armed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    fire_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    triggered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the last firing
    triggered_price: Mapped[Decimal | None] = mapped_column(Numeric(38, 18))  # the reading that fired it
