"""Performance figures from get_performance as grounding facts: return, drawdown, the benchmark's return."""

from __future__ import annotations

from decimal import Decimal

from sage.chat.grounding import Facts, check_answer
from tests.chat.grounding_facts import corpus_facts


def _facts() -> Facts:
    facts = corpus_facts().copy()
    facts.add_performance(
        return_pct=Decimal("4.455"),
        drawdown_pct=Decimal("0.045"),
        benchmark_symbol="BTC/USDT",
        benchmark_return_pct=Decimal("10"),
    )
    return facts


def flagged(answer: str) -> list[tuple[str, str | None]]:
    return [(c.text, c.reason) for c in check_answer(answer, _facts()).unverified]


def test_the_portfolios_return_drawdown_and_the_benchmarks_return_are_grounded():
    assert flagged("Your portfolio returned +4.46% this month, with a maximum drawdown of 0.05%.") == []
    assert flagged("Holding BTC/USDT instead returned +10.00% over the same month.") == []


def test_a_wrong_return_or_drawdown_is_flagged():
    assert [text for text, _ in flagged("Your portfolio returned +6.20% this month.")] == ["+6.20%"]
    assert [text for text, _ in flagged("Your portfolio had a maximum drawdown of 3.50% this month.")] == ["3.50%"]


def test_a_loss_stated_for_a_positive_return_is_flagged():
    assert [text for text, _ in flagged("Your portfolio returned -4.46% this month.")] == ["-4.46%"]


def test_without_performance_facts_a_return_claim_is_not_grounded():
    unverified = check_answer("Your portfolio returned +4.46% this month.", corpus_facts()).unverified
    assert [c.text for c in unverified] == ["+4.46%"]
