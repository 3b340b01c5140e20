"""The grounding check on hand-written answers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sage.chat.context import Fact
from sage.chat.grounding import GroundingStats, check_answer
from sage.observability.metrics import Metrics

FACTS = [
    Fact("BTC/USDT price", Decimal("97250.50"), "price"),
    Fact("BTC/USDT 24h change", Decimal("2.31"), "percent"),
    Fact("ETH/USDT price", Decimal("3456.78"), "price"),
    Fact("ETH/USDT 24h change", Decimal("-1.25"), "percent"),
    Fact("DOGE/USDT price", Decimal("0.123456"), "price"),
    Fact("Fear & Greed Index", Decimal(72), "index"),
    Fact("portfolio value", Decimal("1250000"), "amount"),
    Fact("BTC/USDT quantity", Decimal("0.5"), "quantity"),
]


def claims(answer: str, question: str = "") -> list[tuple[str, bool]]:
    return [(c.text, c.verified) for c in check_answer(answer, FACTS, question=question).claims]


def test_true_claims_are_verified():
    answer = "BTC/USDT trades at $97,250.50, up 2.31% in 24h. The Fear & Greed Index is 72 (Greed)."
    assert claims(answer) == [("$97,250.50", True), ("2.31%", True), ("72", True)]


def test_wrong_claims_are_unverified():
    answer = "BTC is at $99,100, up 5.4% today, and the Fear & Greed Index reads 40."
    result = check_answer(answer, FACTS)
    assert [c.text for c in result.unverified] == ["$99,100", "5.4%", "40"]
    assert not result.grounded


@pytest.mark.parametrize(
    "stated",
    ["$97,250", "$97,251", "97,250.5 USDT", "$97.25K", "$97.3k", "$97K", "97.25 thousand dollars"],
)
def test_rounded_prices_are_verified(stated):
    ((_, verified),) = claims(f"Bitcoin is at {stated} right now.")
    assert verified


@pytest.mark.parametrize("stated", ["$97,300", "$96K", "$97.5K", "$97,260.5"])
def test_rounding_only_stretches_to_the_precision_written(stated):
    ((_, verified),) = claims(f"Bitcoin is at {stated} right now.")
    assert not verified


def test_millions_and_billions_are_scaled():
    assert claims("Your portfolio is worth $1.25M.") == [("$1.25M", True)]
    assert claims("Your portfolio is worth $1.25 million.") == [("$1.25 million", True)]
    assert claims("Your portfolio is worth $1.25B.") == [("$1.25B", False)]


def test_percent_and_fraction_forms_match_each_other():
    assert claims("BTC rose 2.3% over the day.") == [("2.3%", True)]
    assert claims("BTC rose by a factor of 0.0231 over the day.") == [("0.0231", True)]
    assert claims("ETH fell 1.25 percent.") == [("1.25 percent", True)]


def test_an_explicit_sign_must_match_the_direction():
    assert claims("ETH moved -1.25% today.") == [("-1.25%", True)]
    assert claims("ETH moved +1.25% today.") == [("+1.25%", False)]


def test_approximate_and_directional_wording_is_respected():
    assert claims("BTC is around $97,000.") == [("$97,000", True)]
    assert claims("BTC is above $95,000.") == [("$95,000", True)]
    assert claims("BTC is below $95,000.") == [("$95,000", False)]
    assert claims("BTC is above $50,000.") == [("$50,000", False)]  # true, but not what the context says


def test_numbers_the_user_typed_are_not_claims():
    result = check_answer(
        "If BTC reaches $120,000, that is well above today's $97,250.50.",
        FACTS,
        question="What if bitcoin hits 120k?",
    )
    assert [(c.text, c.verified) for c in result.claims] == [("$97,250.50", True)]
    assert result.user_numbers_ignored == 1


def test_times_dates_durations_counts_and_list_markers_are_not_claims():
    answer = (
        "Here are 3 things, as of 2026-11-22 09:59:58 UTC (updated 09:59):\n"
        "1. Over 24 hours and 7 days the picture held.\n"
        "2. In 2025 volatility was higher.\n"
        "3. The top 5 coins moved together."
    )
    assert claims(answer) == []


def test_quantities_are_checked_against_the_portfolio():
    assert claims("You hold 0.5 BTC.") == [("0.5", True)]
    assert claims("You hold 0.75 BTC.") == [("0.75", False)]


def test_small_prices_keep_their_precision():
    assert claims("DOGE is at $0.1235.") == [("$0.1235", True)]
    assert claims("DOGE is at $0.1335.") == [("$0.1335", False)]


def test_restating_the_index_scale_is_not_a_claim_about_the_market():
    assert claims("The Fear & Greed Index runs from 0-100 and sits at 72.") == [
        ("0", True),
        ("100", True),
        ("72", True),
    ]


def test_an_answer_without_figures_has_no_claims():
    result = check_answer("Markets are mixed; I don't have data on that coin.", FACTS)
    assert not result.has_claims and result.grounded


def test_rates_count_answers_and_claims_over_answers_with_figures():
    metrics = Metrics()
    stats = GroundingStats(metrics)
    stats.record(check_answer("BTC is at $97,250.50, up 2.31%.", FACTS))  # 2 claims, fine
    stats.record(check_answer("BTC is at $50,000 and up 2.31%.", FACTS))  # 2 claims, 1 wrong
    stats.record(check_answer("No figures here.", FACTS))  # not counted
    stats.record(check_answer("ETH at $3,456.78, index 72.", FACTS))  # 2 claims, fine
    rates = stats.rates()
    assert rates["answers"] == 3
    assert rates["response_percent"] == pytest.approx(100 / 3)
    assert rates["claim_percent"] == pytest.approx(100 / 6)
    assert metrics.value("GroundingEvaluated", level="response") == 3
    assert metrics.value("GroundingEvaluated", level="claim") == 6
    assert metrics.value("GroundingUnverified", level="response") == 1
    assert metrics.value("GroundingUnverified", level="claim") == 1
    assert metrics.value("HallucinationRate", level="response") == pytest.approx(100 / 3)
