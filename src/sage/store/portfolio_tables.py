"""Shadow portfolios (paper-trading ledgers) and their transactions.

Only the transactions are truth: positions, average cost, cash and realized P&L are derived
from them by `sage.portfolio.ledger` every time. A portfolio's row is also the lock that
serializes its writers (`SELECT ... FOR UPDATE`), so two concurrent buys can never both
spend the same cash.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from sage.store.base import Base

KINDS = ("buy", "sell", "deposit", "withdraw")


class Portfolio(Base):
    __tablename__ = "portfolios"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    base_currency: Mapped[str] = mapped_column(String(20), nullable=False, server_default="USDT")
    starting_cash: Mapped[Decimal] = mapped_column(Numeric(38, 18), nullable=False, server_default="0")
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    # bumped by a trigger on every write to the portfolio's transactions (migration 0011):
    # the key of the derived state cached by sage.portfolio.state
    ledger_version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_portfolios_user_id_name"),
        # at most one default per user: "create the default on first use" races resolve here
        Index("uq_portfolios_default", "user_id", unique=True, postgresql_where=text("is_default")),
        CheckConstraint("starting_cash >= 0", name="starting_cash_non_negative"),
    )


class PortfolioTransaction(Base):
    """One booked event. Trades carry symbol and price; deposits/withdrawals carry neither
    and their `quantity` is the amount of base currency."""

    __tablename__ = "portfolio_transactions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    portfolio_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    symbol: Mapped[str | None] = mapped_column(String(41))
    quantity: Mapped[Decimal] = mapped_column(Numeric(38, 18), nullable=False)
    price: Mapped[Decimal | None] = mapped_column(Numeric(38, 18))
    fee: Mapped[Decimal] = mapped_column(Numeric(38, 18), nullable=False, server_default="0")
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    note: Mapped[str | None] = mapped_column(String(500))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (
        UniqueConstraint("portfolio_id", "idempotency_key", name="uq_portfolio_transactions_idempotency"),
        Index("ix_portfolio_transactions_portfolio_executed", "portfolio_id", "executed_at", "seq"),
        CheckConstraint("kind IN ('buy', 'sell', 'deposit', 'withdraw')", name="kind"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("fee >= 0", name="fee_non_negative"),
        CheckConstraint(
            "(kind IN ('buy', 'sell') AND symbol IS NOT NULL AND price >= 0)"
            " OR (kind IN ('deposit', 'withdraw') AND symbol IS NULL AND price IS NULL)",
            name="shape",
        ),
    )


class PortfolioCheckpoint(Base):
    """A ledger's derived state after a prefix of its history (sage.portfolio.checkpoints):
    never truth, only a shortcut. The transaction triggers (migration 0015) delete every
    checkpoint at or after the earliest time a write touches, in the writer's transaction, so
    a checkpoint that exists was derived from the history as it still is up to it."""

    __tablename__ = "portfolio_checkpoints"

    portfolio_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("portfolios.id", ondelete="CASCADE"), primary_key=True
    )
    ledger_version: Mapped[int] = mapped_column(BigInteger, nullable=False)  # derived from this version
    # the last transaction the state includes (execution order: time, then seq)
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)  # transactions included
    state: Mapped[dict[str, object]] = mapped_column(JSONB, nullable=False)


class PortfolioPoint(Base):
    """A valued step boundary of a performance series (sage.portfolio.points): never truth,
    only a shortcut. Deleted by the triggers of migration 0016 when a ledger write touches its
    time or earlier, or a candle is written into its step after the fact."""

    __tablename__ = "portfolio_points"

    portfolio_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("portfolios.id", ondelete="CASCADE"), primary_key=True
    )
    step_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)  # 3600 or 86400
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    value: Mapped[Decimal | None] = mapped_column(Numeric, nullable=True)  # None: a held symbol had no close
    net_deposits: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    benchmark: Mapped[Decimal | None] = mapped_column(Numeric, nullable=True)  # the benchmark's close
    missing: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)  # held symbols without a close

    __table_args__ = (Index("ix_portfolio_points_step_at", "step_seconds", "at"),)
