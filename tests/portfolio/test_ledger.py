"""The ledger's arithmetic: weighted average cost, cash, realized P&L, fees, and the rules."""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sage.portfolio.ledger import PRECISION, Entry, Ledger, LedgerError, replay, to_places

T0 = datetime(2026, 1, 1, tzinfo=UTC)
D = Decimal


def deposit(amount: str, i: int = 0) -> Entry:
    return Entry("deposit", None, D(amount), None, D(0), T0 + timedelta(minutes=i), f"d{i}")


def trade(kind: str, symbol: str, quantity: str, price: str, fee: str = "0", i: int = 0) -> Entry:
    return Entry(kind, symbol, D(quantity), D(price), D(fee), T0 + timedelta(minutes=i), f"{kind}{i}")


def test_buys_average_their_cost_by_quantity():
    ledger = replay(
        [
            deposit("30000"),
            trade("buy", "BTC/USDT", "0.1", "50000", "5", 1),
            trade("buy", "BTC/USDT", "0.3", "60000", "18", 2),
        ]
    )
    btc = ledger.holdings["BTC/USDT"]
    assert btc.quantity == D("0.4")
    assert btc.average_cost == D("57500")  # (5000 + 18000) / 0.4: fees are not in the cost basis
    assert ledger.cash == D("30000") - D("5000") - D("5") - D("18000") - D("18")
    assert ledger.buy_fees == D("23") and ledger.realized_pnl == 0


def test_a_sell_realizes_price_minus_average_cost_times_quantity_minus_its_fee():
    ledger = replay(
        [
            deposit("10000"),
            trade("buy", "ETH/USDT", "2", "3000", "6", 1),
            trade("sell", "ETH/USDT", "0.5", "3500", "1.75", 2),
        ]
    )
    assert ledger.realized_pnl == (D("3500") - D("3000")) * D("0.5") - D("1.75")
    assert ledger.holdings["ETH/USDT"].quantity == D("1.5")
    assert ledger.holdings["ETH/USDT"].average_cost == D("3000")  # a sell leaves the average cost alone
    assert ledger.cash == D("10000") - D("6006") + D("1750") - D("1.75")
    assert ledger.fees_paid == D("7.75")


def test_selling_everything_closes_the_position():
    ledger = replay(
        [deposit("100"), trade("buy", "SOL/USDT", "1", "100", i=1), trade("sell", "SOL/USDT", "1", "90", i=2)]
    )
    assert "SOL/USDT" not in ledger.holdings and ledger.realized_pnl == D(-10) and ledger.cash == D(90)


def test_selling_more_than_held_is_refused_naming_the_transaction():
    with pytest.raises(LedgerError) as caught:
        replay(
            [
                deposit("1000"),
                trade("buy", "BTC/USDT", "0.01", "50000", i=1),
                trade("sell", "BTC/USDT", "0.02", "50000", i=2),
            ]
        )
    assert caught.value.ref == "sell2" and "only 0.01 is held" in caught.value.reason


def test_spending_more_than_the_cash_is_refused_including_the_fee():
    with pytest.raises(LedgerError) as caught:
        replay([deposit("100"), trade("buy", "BTC/USDT", "1", "100", "0.1", 1)])
    assert "costs 100.1 with the fee but the cash is 100" in caught.value.reason


def test_withdrawing_more_than_the_cash_is_refused():
    with pytest.raises(LedgerError):
        replay([deposit("100"), Entry("withdraw", None, D("100.01"), None, D(0), T0, "w")])


def test_selling_what_was_never_bought_is_refused():
    with pytest.raises(LedgerError):
        replay([deposit("100"), trade("sell", "XRP/USDT", "1", "1")])


# -- the reconciliation identity, for any valid history ---------------------------------------------
amounts = st.decimals(min_value=D("0.000001"), max_value=D("100000"), places=6, allow_nan=False, allow_infinity=False)
fractions = st.decimals(min_value=D("0.01"), max_value=D("1"), places=2)
steps = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdraw", "buy", "sell"]),
        st.sampled_from(["A/USDT", "B/USDT"]),
        amounts,
        fractions,
    ),
    min_size=1,
    max_size=40,
)


def _valid_history(plan: list[tuple[str, str, Decimal, Decimal]]) -> tuple[list[Entry], Ledger]:
    """Turn a random plan into valid entries (sizes scaled to what the ledger allows)."""
    ledger = Ledger()
    entries: list[Entry] = []
    for i, (kind, symbol, amount, fraction) in enumerate(plan):
        when = T0 + timedelta(minutes=i)
        if kind == "deposit":
            entry = Entry("deposit", None, amount, None, D(0), when, i)
        elif kind == "withdraw":
            quantity = to_places(ledger.cash * fraction, decimal.ROUND_DOWN)
            if quantity <= 0:
                continue
            entry = Entry("withdraw", None, quantity, None, D(0), when, i)
        elif kind == "buy":
            price = amount
            budget = ledger.cash * fraction / D("1.001")
            quantity = (budget / price).quantize(D("1e-8"), rounding="ROUND_DOWN")
            if quantity <= 0:
                continue
            fee = to_places(quantity * price * D("0.001"))
            entry = Entry("buy", symbol, quantity, price, fee, when, i)
        else:
            held = ledger.holdings.get(symbol)
            if held is None:
                continue
            quantity = (held.quantity * fraction).quantize(D("1e-8"), rounding="ROUND_DOWN") or held.quantity
            fee = to_places(quantity * amount * D("0.001"))
            entry = Entry("sell", symbol, quantity, amount, fee, when, i)
        ledger.apply(entry)
        entries.append(entry)
    return entries, ledger


@settings(max_examples=150, deadline=None)
@given(steps)
def test_cash_plus_cost_basis_equals_deposits_minus_withdrawals_plus_realized_minus_buy_fees(plan):
    entries, ledger = _valid_history(plan)
    replayed = replay(entries)
    with decimal.localcontext(prec=PRECISION):  # the identity's own sums must not round
        left = replayed.cash + replayed.cost_basis()
        right = replayed.deposits - replayed.withdrawals + replayed.realized_pnl - replayed.buy_fees
        # and with quantity x average cost, equal up to the average's rounding at 80 digits
        at_average = replayed.cash + sum((h.quantity * h.average_cost for h in replayed.holdings.values()), D(0))
    # exact but for the 80th significant digit: the cost basis a partial sell removes is the
    # one it realizes against, and only that share (a division) is rounded, at 80 digits
    assert abs(left - right) <= abs(right) * D("1e-75") + D("1e-75")
    assert abs(at_average - right) < D("1e-40")
    assert replayed.cash >= 0
    assert replayed == ledger  # replay is deterministic: derived state never depends on how it was built


@settings(max_examples=100, deadline=None)
@given(steps)
def test_fees_paid_are_the_sum_of_every_fee(plan):
    entries, ledger = _valid_history(plan)
    assert ledger.fees_paid == sum((e.fee for e in entries), D(0))
