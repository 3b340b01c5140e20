"""The grounding check, one behaviour at a time (facts: tests/chat/grounding_facts.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sage.chat.grounding import FEAR_GREED, Facts, Field, GroundingStats, Subject, check_answer
from sage.chat.grounding.labels import classes_for, classify, find_labels
from sage.observability.metrics import Metrics
from tests.chat.grounding_facts import NOW, Bar, corpus_facts


def flagged(answer: str, question: str = "") -> list[tuple[str, str | None]]:
    return [(c.text, c.reason) for c in check_answer(answer, corpus_facts(), question=question).unverified]


def claims(answer: str, question: str = "") -> list[tuple[str, bool]]:
    return [(c.text, c.verified) for c in check_answer(answer, corpus_facts(), question=question).claims]


# -- facts ------------------------------------------------------------------------------------------------
def test_a_ticker_adds_its_price_and_derives_the_24h_move_and_opening_price():
    facts = Facts()
    facts.add_ticker("BTC/USDT", price=Decimal("110"), change_pct=Decimal("10"), as_of=NOW)
    by_field = {f.field: f for f in facts}
    assert by_field[Field.PRICE].value == Decimal("110") and not by_field[Field.PRICE].derived
    assert by_field[Field.OPEN].value == Decimal("100") and by_field[Field.OPEN].derived
    assert by_field[Field.CHANGE_ABS].value == Decimal("10")


def test_candles_add_each_bar_and_the_windows_high_low_change_and_volume():
    facts = Facts()
    day = datetime(2026, 11, 20, tzinfo=UTC)
    facts.add_candles(
        "ETH/USDT",
        [
            Bar(day, Decimal(100), Decimal(120), Decimal(90), Decimal(110), Decimal(5)),
            Bar(day.replace(day=21), Decimal(110), Decimal(130), Decimal(105), Decimal(125), Decimal(7)),
        ],
    )
    derived = {(f.field, f.value) for f in facts if f.derived}
    assert derived == {
        (Field.HIGH, Decimal(130)),
        (Field.LOW, Decimal(90)),
        (Field.VOLUME, Decimal(12)),
        (Field.CHANGE_ABS, Decimal(25)),
        (Field.CHANGE_PCT, Decimal(25)),
        (Field.RANGE, Decimal(40)),
    }
    assert len([f for f in facts if not f.derived]) == 10


def test_fear_greed_history_keeps_each_readings_time():
    facts = corpus_facts()
    readings = {(f.value, f.time.day) for f in facts.about(FEAR_GREED) if f.field is Field.INDEX_VALUE if f.time}
    assert readings == {(Decimal(72), 22), (Decimal(65), 21), (Decimal(40), 20), (Decimal(20), 15)}


def test_a_symbols_facts_include_the_users_position_in_it():
    fields = {(f.subject.kind.value, f.field) for f in corpus_facts().about(Subject.symbol("ETH/USDT"))}
    assert ("position", Field.PNL) in fields and ("symbol", Field.PRICE) in fields


def test_a_calculation_result_is_a_fact_whatever_the_sentence_is_about():
    facts = Facts()
    facts.add_ticker("BTC/USDT", price=Decimal("97250.50"), as_of=NOW)
    assert [c.verified for c in check_answer("Half a BTC is worth $48,625.25.", facts).claims] == [False]
    facts.add_calculation("0.5 * 97250.50", Decimal("48625.25"))
    assert [c.verified for c in check_answer("Half a BTC is worth $48,625.25.", facts).claims] == [True]


# -- binding ----------------------------------------------------------------------------------------------
def test_each_number_is_checked_against_the_coin_named_nearest_before_it():
    assert flagged("ETH is at $3,413.28 and BTC at $97,250.50.") == []
    assert flagged("BTC is at $3,413.28 and ETH at $97,250.50.") == [
        ("$3,413.28", "wrong_subject"),
        ("$97,250.50", "wrong_subject"),
    ]


def test_a_number_before_any_coin_binds_to_the_coin_after_it():
    assert flagged("At $97,250.50, BTC leads.") == []
    assert flagged("At $3,413.28, BTC leads.") == [("$3,413.28", "wrong_subject")]


def test_a_sentence_without_a_coin_is_about_the_previous_sentences_coin():
    assert flagged("Look at ETH. It trades at $3,413.28.") == []
    assert flagged("Look at ETH. It trades at $97,250.50.") == [("$97,250.50", "wrong_subject")]


def test_a_number_written_with_a_coin_is_a_quantity_of_that_coin():
    assert flagged("You hold 2 ETH.") == []
    assert flagged("You hold 3 ETH.") == [("3", "value_mismatch")]


def test_a_field_keyword_selects_the_fact():
    assert flagged("BTC's 24h high is $98,100.") == []
    assert flagged("BTC's 24h low is $98,100.") == [("$98,100", "wrong_field")]
    assert flagged("BTC's volume is 12,345.6 BTC.") == []


def test_present_tense_means_the_latest_fact_and_a_date_selects_that_days_fact():
    assert flagged("The Fear & Greed Index is 40.") == [("40", "value_mismatch")]
    assert flagged("The Fear & Greed Index was 40 on Nov 20.") == []
    assert flagged("The Fear & Greed Index was 40 on Nov 21.") == [("40", "value_mismatch")]


def test_the_span_points_at_the_figure_in_the_answer():
    answer = "Bitcoin is at $3,413.28 now."
    (claim,) = check_answer(answer, corpus_facts()).unverified
    assert answer[claim.start : claim.end] == "$3,413.28" and claim.subject == "symbol:BTC/USDT"


def test_a_coin_named_right_after_the_figure_is_its_subject():
    assert flagged("Your cost basis is $30,000 for BTC and $8,000 for ETH.") == []
    assert flagged("Your cost basis is $30,000 for BTC and $9,000 for ETH.") == [("$9,000", "value_mismatch")]


def test_a_supposed_quantity_is_a_premise_and_its_value_is_derived():
    assert flagged("For context, 0.1 BTC would be worth about $9,725 at this price.") == []
    assert flagged("For context, 0.1 BTC would be worth about $8,725 at this price.") == [("$8,725", "value_mismatch")]


def test_the_gap_between_two_coins_moves_is_derived():
    assert flagged("SOL outpaced BTC by roughly 2.9 percentage points today.") == []
    assert flagged("ETH trailed BTC by 3.56 points.") == []
    assert flagged("ETH trailed BTC by 5 points.") == [("5", "value_mismatch")]


def test_a_target_level_is_a_premise_and_the_distance_to_it_is_derived():
    assert flagged("BTC needs to gain about 2.8% to reach $100,000.") == []
    assert [r for _, r in flagged("BTC needs to gain about 5% to reach $100,000.")] == ["wrong_subject"]  # SOL's 5.20 %
    assert flagged("Your alert for BTC at $100,000 is set.") == []


def test_a_cross_rate_is_derived_from_both_legs():
    assert flagged("The BTC/ETH ratio is about 28.5.") == []
    assert flagged("The BTC/ETH ratio is about 35.") == [("35", "value_mismatch")]


def test_holding_near_a_level_is_a_price_not_a_holding():
    assert flagged("Bitcoin is holding near the $97K level.") == []


def test_a_generic_statement_without_a_subject_is_not_a_claim():
    assert claims("Prices can move 5-10% in a day.") == []


# -- direction and comparison ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer",
    [
        "BTC is down 2.31% today.",
        "BTC fell 2.31%.",
        "BTC lost 2.31% over 24 hours.",
        "BTC moved -2.31%.",
        "BTC is 2.31% lower.",
    ],
)
def test_a_direction_against_the_sign_is_flagged(answer):
    assert [reason for _, reason in flagged(answer)] == ["wrong_direction"]


@pytest.mark.parametrize(
    "answer", ["비트코인은 2.31% 하락했습니다.", "비트코인은 2.31% 떨어졌습니다.", "이더리움은 1.25% 상승했습니다."]
)
def test_korean_direction_words_are_read(answer):
    assert [reason for _, reason in flagged(answer)] == ["wrong_direction"]


def test_a_move_to_a_level_is_a_price_not_a_change():
    assert flagged("SOL rose 5.2% to $187.65.") == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("BTC is above $95,000.", None),
        ("BTC is above $100,000.", "comparison_false"),
        ("BTC is above $80K.", "comparison_loose"),
        ("BTC is below $100,000.", None),
        ("BTC is below $95,000.", "comparison_false"),
        ("BTC is about $100K.", None),
        ("BTC is about $90K.", "value_mismatch"),
        ("비트코인은 9만 달러 이상입니다.", None),
        ("비트코인은 9만 달러 미만입니다.", "comparison_false"),
    ],
)
def test_comparatives_hold_within_a_bounded_band(answer, reason):
    assert [r for _, r in flagged(answer)] == ([reason] if reason else [])


# -- Fear & Greed -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "label"),
    [
        (0, "Extreme Fear"),
        (25, "Extreme Fear"),
        (26, "Fear"),
        (46, "Fear"),
        (47, "Neutral"),
        (54, "Neutral"),
        (55, "Greed"),
        (75, "Greed"),
        (76, "Extreme Greed"),
        (100, "Extreme Greed"),
    ],
)
def test_the_index_classes_follow_alternative_me(value, label):
    assert classify(value) == label


def test_a_value_next_to_a_boundary_accepts_either_neighbour_but_no_further():
    assert classes_for(25) == {"Extreme Fear", "Fear"}
    assert classes_for(60) == {"Greed"}


def test_a_label_that_contradicts_the_stated_value_is_flagged():
    assert flagged("The Fear & Greed Index is 25 (Extreme Greed).") == [
        ("25", "value_mismatch"),
        ("Extreme Greed", "class_mismatch"),
    ]
    assert flagged("The Fear & Greed Index is 72 (Greed).") == []


def test_a_label_without_a_value_is_checked_against_the_published_class():
    assert flagged("The market mood is Extreme Fear.") == [("Extreme Fear", "class_mismatch")]
    assert flagged("The Fear & Greed Index shows Greed.") == []


def test_fear_and_greed_in_ordinary_words_are_not_labels():
    assert find_labels("The Fear & Greed Index is up; fear of missing out makes investors greedy.") == []


# -- user numbers ------------------------------------------------------------------------------------------
def test_a_users_wrong_number_is_flagged_when_the_answer_asserts_it():
    assert flagged("Yes, BTC is at $150,000.", question="I heard BTC is at 150,000") == [("$150,000", "value_mismatch")]


def test_a_users_number_quoted_or_used_as_a_hypothesis_is_not_a_claim():
    question = "I heard BTC is at 150,000"
    result = check_answer("You said 150,000, but BTC is at $97,250.50.", corpus_facts(), question=question)
    assert [(c.text, c.verified) for c in result.claims] == [("$97,250.50", True)]
    assert result.user_numbers_ignored == 1
    assert flagged("If BTC reaches $150,000, you'd be up a lot.", question=question) == []


def test_a_users_own_quantity_and_its_value_at_the_live_price_are_not_flagged():
    assert flagged("Your 0.3 BTC is worth $29,175.15.", question="what are my 0.3 BTC worth?") == []


# -- what is not a claim ------------------------------------------------------------------------------------
def test_times_durations_counts_years_and_list_markers_are_not_claims():
    answer = (
        "Here are 3 things:\n1. Over 24 hours and 7 days the picture held.\n"
        "2. In 2025 volatility was higher.\n3. The top 5 coins moved together on 1h candles."
    )
    assert claims(answer) == []


def test_a_bare_number_about_a_coin_is_a_claim():
    assert flagged("BTC now 91000") == [("91000", "value_mismatch")]
    assert flagged("BTC now 97250") == []


def test_restating_the_index_scale_is_not_a_claim():
    assert claims("The Fear & Greed Index runs from 0-100 and sits at 72.") == [("72", True)]


# -- dates ------------------------------------------------------------------------------------------------
def test_a_stated_time_must_be_a_time_of_the_data():
    assert flagged("As of 2026-11-22 09:59:58 UTC, BTC is at $97,250.50.") == []
    assert flagged("As of 09:59 UTC BTC is at $97,250.50.") == []
    assert flagged("As of 2026-11-22 08:00 UTC, BTC is at $97,250.50.") == [("2026-11-22 08:00 UTC", "time_mismatch")]
    assert flagged("BTC peaked at $99,400 on Nov 20.") == []
    assert flagged("BTC peaked at $99,400 on Nov 18.") == [("Nov 18", "time_mismatch")]


def test_a_date_range_selects_every_day_in_it():
    assert flagged("BTC's daily closes were $94,000, $96,500 and $95,100 on Nov 19-21.") == []
    assert flagged("BTC's daily closes were $94,000, $96,000 and $95,100 on Nov 19-21.") == [
        ("$96,000", "value_mismatch")
    ]


def test_dates_are_not_checked_when_no_fact_has_a_time():
    facts = Facts()
    facts.add_calculation("1 + 1", Decimal(2))
    assert check_answer("On 2026-11-20 the result was 2.", facts).claims == ()


# -- rates ------------------------------------------------------------------------------------------------
def test_rates_count_answers_and_claims_over_answers_with_figures():
    metrics = Metrics()
    stats = GroundingStats(metrics)
    facts = corpus_facts()
    stats.record(check_answer("BTC is at $97,250.50, up 2.31%.", facts))  # 2 claims, fine
    stats.record(check_answer("BTC is at $50,000 and up 2.31%.", facts))  # 2 claims, 1 wrong
    stats.record(check_answer("No figures here.", facts))  # not counted
    stats.record(check_answer("ETH at $3,413.28, index 72.", facts))  # 2 claims, fine
    rates = stats.rates()
    assert rates["answers"] == 3
    assert rates["response_percent"] == pytest.approx(100 / 3)
    assert rates["claim_percent"] == pytest.approx(100 / 6)
    assert metrics.value("GroundingEvaluated", level="response") == 3
    assert metrics.value("GroundingEvaluated", level="claim") == 6
    assert metrics.value("GroundingUnverified", level="response") == 1
    assert metrics.value("GroundingUnverified", level="claim") == 1
    assert metrics.value("HallucinationRate", level="response") == pytest.approx(100 / 3)
