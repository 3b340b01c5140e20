"""The ledger's arithmetic: positions, weighted average cost, cash and realized P&L derived
from transactions (pure functions; nothing here is stored).

Conventions (docs/portfolio.md states them for users):
- Weighted average cost, as exchanges and freqtrade report it. A buy adds `quantity x price`
  to the position's cost basis; a sell removes the sold share of the cost basis
  (`cost x sold / held`, the whole basis when the position closes).
- Fees are in the portfolio's base currency and always leave cash. A buy's fee is NOT part
  of the cost basis (it is counted in `buy_fees`); a sell's fee is inside realized P&L:
  a sell realizes `quantity x price - removed cost - fee` = `(price - average cost) x quantity - fee`.
- So (the property tests check it; exact but for the 80th significant digit, where a
  partial sell's share of the cost basis is rounded):
      cash + sum(cost basis) = deposits - withdrawals + realized P&L - buy fees
  where cost basis = quantity x average cost.
- A transaction that would sell more than is held, or spend or withdraw more cash than is
  available at that point of history, makes the history invalid: `LedgerError` names it.

Arithmetic runs at 80 significant digits: products of two NUMERIC(38, 18) values are exact,
and only the division of a partial sell's cost basis rounds.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

ZERO = Decimal(0)
PRECISION = 80
STORED_PLACES = Decimal("1e-18")  # NUMERIC(38, 18)


class LedgerError(ValueError):
    """A transaction the history cannot hold; `ref` is its id (or the CSV row number)."""

    def __init__(self, ref: object, reason: str) -> None:
        super().__init__(reason)
        self.ref = ref
        self.reason = reason


class TransactionLike(Protocol):
    """A booked transaction as readers outside the ledger see it (the store's
    PortfolioTransaction row): the CSV export writes it, the chat's get_trades reads it."""

    @property
    def id(self) -> object: ...
    @property
    def executed_at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def symbol(self) -> str | None: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def fee(self) -> Decimal: ...
    @property
    def note(self) -> str | None: ...


@dataclass(frozen=True)
class Entry:
    kind: str  # buy | sell | deposit | withdraw
    symbol: str | None
    quantity: Decimal  # for deposit/withdraw: the amount of base currency
    price: Decimal | None
    fee: Decimal
    executed_at: datetime
    ref: object = None
    seq: int = 0  # booking order: breaks ties between equal times (NEW_SEQ and up: not booked yet)


NEW_SEQ = 2**62  # above every stored seq: a transaction being booked sorts after its equals in time


@dataclass(frozen=True)
class Holding:
    symbol: str
    quantity: Decimal
    cost: Decimal  # cost basis: quantity x average cost
    first_at: datetime
    last_at: datetime

    @property
    def average_cost(self) -> Decimal:
        with decimal.localcontext(prec=PRECISION):
            return self.cost / self.quantity


@dataclass
class Ledger:
    """The running state of one portfolio; `apply` entries in (executed_at, seq) order."""

    cash: Decimal = ZERO
    deposits: Decimal = ZERO
    withdrawals: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    buy_fees: Decimal = ZERO
    sell_fees: Decimal = ZERO
    trades: int = 0
    holdings: dict[str, Holding] = field(default_factory=dict)

    @property
    def fees_paid(self) -> Decimal:
        return self.buy_fees + self.sell_fees

    @property
    def net_deposits(self) -> Decimal:
        return self.deposits - self.withdrawals

    def quantities(self) -> dict[str, Decimal]:
        """The quantity of each holding, in the ledger's order (a new position last)."""
        return {symbol: held.quantity for symbol, held in self.holdings.items()}

    def cost_basis(self) -> Decimal:
        return sum((h.cost for h in self.holdings.values()), ZERO)

    def apply(self, entry: Entry) -> None:
        with decimal.localcontext(prec=PRECISION):
            self.apply_exact(entry)

    def apply_exact(self, entry: Entry) -> None:
        """`apply` for callers that already run at PRECISION (a replay sets it once)."""
        if entry.kind == "deposit":
            self.cash += entry.quantity
            self.deposits += entry.quantity
        elif entry.kind == "withdraw":
            if entry.quantity > self.cash:
                raise LedgerError(entry.ref, f"withdraws {_fmt(entry.quantity)} but the cash is {_fmt(self.cash)}")
            self.cash -= entry.quantity
            self.withdrawals += entry.quantity
        elif entry.kind == "buy":
            self._buy(entry)
        elif entry.kind == "sell":
            self._sell(entry)
        else:
            raise LedgerError(entry.ref, f"unknown kind {entry.kind!r}")

    def _buy(self, entry: Entry) -> None:
        symbol, price = _trade(entry)
        notional = entry.quantity * price
        spend = notional + entry.fee
        if spend > self.cash:
            raise LedgerError(
                entry.ref,
                f"buying {_fmt(entry.quantity)} {symbol} costs {_fmt(spend)} with the fee"
                f" but the cash is {_fmt(self.cash)}",
            )
        self.cash -= spend
        self.buy_fees += entry.fee
        self.trades += 1
        held = self.holdings.get(symbol)
        if held is None:
            self.holdings[symbol] = Holding(symbol, entry.quantity, notional, entry.executed_at, entry.executed_at)
        else:
            self.holdings[symbol] = Holding(
                symbol, held.quantity + entry.quantity, held.cost + notional, held.first_at, entry.executed_at
            )

    def _sell(self, entry: Entry) -> None:
        symbol, price = _trade(entry)
        held = self.holdings.get(symbol)
        quantity_held = held.quantity if held is not None else ZERO
        if held is None or entry.quantity > quantity_held:
            raise LedgerError(
                entry.ref, f"sells {_fmt(entry.quantity)} {symbol} but only {_fmt(quantity_held)} is held then"
            )
        proceeds = entry.quantity * price - entry.fee
        if self.cash + proceeds < 0:
            raise LedgerError(entry.ref, f"the fee {_fmt(entry.fee)} exceeds what the sale and the cash cover")
        removed = held.cost if entry.quantity == held.quantity else held.cost * entry.quantity / held.quantity
        self.cash += proceeds
        self.sell_fees += entry.fee
        self.realized_pnl += proceeds - removed
        self.trades += 1
        if entry.quantity == held.quantity:
            del self.holdings[symbol]
        else:
            self.holdings[symbol] = Holding(
                symbol, held.quantity - entry.quantity, held.cost - removed, held.first_at, entry.executed_at
            )


def to_places(value: Decimal, rounding: str = decimal.ROUND_HALF_UP) -> Decimal:
    """`value` at the 18 decimal places the tables store (under PRECISION: quantizing a
    20-digit amount to 18 places needs 38 digits, more than Python's default context)."""
    with decimal.localcontext(prec=PRECISION):
        return value.quantize(STORED_PLACES, rounding=rounding)


def _trade(entry: Entry) -> tuple[str, Decimal]:
    if entry.symbol is None or entry.price is None:
        raise LedgerError(entry.ref, f"a {entry.kind} needs a symbol and a price")
    return entry.symbol, entry.price


def _fmt(value: Decimal) -> str:
    """A decimal as people write it (no exponent, no trailing zeros)."""
    text = f"{value.normalize():f}"
    return text


def replay(entries: Iterable[Entry]) -> Ledger:
    """The state after `entries` (already in execution order); raises LedgerError at the first
    entry the history cannot hold."""
    ledger = Ledger()
    with decimal.localcontext(prec=PRECISION):
        for entry in entries:
            ledger.apply_exact(entry)
    return ledger


def ordered(entries: Iterable[Entry]) -> list[Entry]:
    """Execution order, as the database reads it back: time, then booking order (seq)."""
    return sorted(entries, key=lambda e: (e.executed_at, e.seq))
