"""Numbers in alerts read as people write them."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sage.alerts.conditions import human_number

PRICES = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e12"), places=18, allow_nan=False)


@given(PRICES)
def test_a_formatted_price_is_plain_and_close_to_the_value(value: Decimal) -> None:
    text = human_number(value)
    assert "E" not in text and "e" not in text
    assert not ("." in text and text.endswith("0"))  # no trailing zeros after the point
    back = Decimal(text.replace(",", ""))
    # at least four significant digits, or cents above 1,000
    assert abs(back - value) <= max(abs(value) * Decimal("0.0005"), Decimal("0.005"))


def test_examples() -> None:
    assert human_number(Decimal("100000.000000000000000000")) == "100,000"
    assert human_number(Decimal("67250.5")) == "67,250.5"
    assert human_number(Decimal("0.0000123456")) == "0.00001235"
    assert human_number(Decimal("3.14159")) == "3.1416"
