"""The calculate tool's safe evaluator: exact decimals, and nothing but arithmetic."""

from __future__ import annotations

import decimal
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sage.chat.grounding import Facts
from sage.chat.providers.base import ToolCall
from sage.chat.tools.base import ToolBox, ToolCaller, ToolError
from sage.chat.tools.calculate import PRECISION, calculate_tool, evaluate

decimals = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, places=6)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("0.1 + 0.2", "0.3"),
        ("0.5 * 1.25 * 97250.50", "60781.5625"),
        ("round((3456.78 - 3300) / 3300 * 100, 2)", "4.75"),
        ("2 ** 10", "1024"),
        ("-(3 - 4)", "1"),
        ("max(1, 2.5, -3) + min(4, 5) + abs(-2)", "8.5"),
        ("97250.123456789012345678 * 2", "194500.246913578024691356"),
        ("10 // 3 + 10 % 3", "4"),
        ("1_000 * 2", "2000"),
    ],
)
def test_arithmetic_is_exact(expression: str, value: str) -> None:
    assert evaluate(expression) == Decimal(value)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('true')", "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("x + 1", "not allowed"),
        ("(1).__class__", "not allowed"),
        ("[1, 2]", "not allowed"),
        ("'a' * 3", "not allowed"),
        ("1 / 0", "Division by zero"),
        ("2 ** 1000", "Exponents"),
        ("9 ** 9 ** 9", "Exponents"),
        ("2 ** 0.5", "Exponents"),
        ("1e40 * 1000", "out of range"),
        ("1 +", "Cannot read"),
        ("", "empty"),
        ("1" * 600, "longer than"),
        ("+".join(["1"] * 150), "more than"),
        ("round(1.5, 99)", "round()"),
        ("max()", "takes"),
        ("lambda: 1", "not allowed"),
    ],
)
def test_anything_but_bounded_arithmetic_is_refused_with_a_reason(expression: str, reason: str) -> None:
    with pytest.raises(ToolError, match=reason):
        evaluate(expression)


@settings(deadline=None)  # no timed assertion: a loaded machine must not fail it
@given(decimals, decimals, st.sampled_from(["+", "-", "*"]))
def test_sums_differences_and_products_match_decimal_arithmetic(a: Decimal, b: Decimal, op: str) -> None:
    with decimal.localcontext(prec=PRECISION):  # 34 digits: products of 12+6-digit inputs stay exact
        expected = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert evaluate(f"({a}) {op} ({b})") == expected


async def test_the_tool_returns_the_result_as_text_and_as_a_fact() -> None:
    box = ToolBox([calculate_tool()], timeout=1, max_result_chars=1000)
    caller = ToolCaller(uuid.uuid4(), datetime.now(UTC))
    outcome = await box.run(ToolCall("t1", "calculate", '{"expression": "0.5 * 3"}'), caller)
    assert not outcome.is_error and outcome.data == {"expression": "0.5 * 3", "result": "1.5"}
    facts = Facts()
    assert outcome.ground is not None
    outcome.ground(facts)
    assert [(f.subject.key, f.value) for f in facts] == [("0.5 * 3", Decimal("1.5"))]
    refused = await box.run(ToolCall("t2", "calculate", '{"expression": "1/0"}'), caller)
    assert refused.is_error and refused.result.content == '{"error":"Division by zero"}'


async def test_a_result_over_the_size_cap_is_an_error_result() -> None:
    box = ToolBox([calculate_tool()], timeout=1, max_result_chars=40)
    caller = ToolCaller(uuid.uuid4(), datetime.now(UTC))
    outcome = await box.run(ToolCall("t1", "calculate", '{"expression": "1/3"}'), caller)
    assert outcome.is_error and "too large" in outcome.summary
