"""Reading figures back: every supported way of writing a number parses to the number written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sage.chat.grounding import check_answer
from sage.chat.grounding.dates import find_dates, mask_dates
from sage.chat.grounding.numbers import find_numbers
from tests.chat.grounding_facts import corpus_facts

AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999999"), places=2)
SCALES = {"K": Decimal(10) ** 3, "M": Decimal(10) ** 6, "B": Decimal(10) ** 9}


def _plain(value: Decimal) -> str:
    return f"{value:f}"


def _grouped(value: Decimal) -> str:
    return f"{value:,f}"


def _korean(whole: int) -> str:
    """A multiple of 1,000 in Korean number words: 91,000 -> "9만 1천", 1.2e8 -> "1억 2000만"."""
    parts = []
    for unit, size in (("조", 10**12), ("억", 10**8), ("만", 10**4)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    if whole:
        parts.append(f"{whole // 1000}천")
    return " ".join(parts)


def _only(text: str) -> Decimal:
    (number,) = find_numbers(text)
    return number.value


@settings(deadline=None)  # no timed assertion: a loaded machine must not fail it
@given(AMOUNTS)
def test_plain_and_grouped_numbers_parse_back(value):
    assert _only(f"BTC is at {_plain(value)} now.") == value
    assert _only(f"BTC is at {_grouped(value)} now.") == value
    assert _only(f"BTC is at ${_grouped(value)} now.") == value
    assert _only(f"BTC is at {_grouped(value)} USDT now.") == value


@settings(deadline=None)  # no timed assertion: a loaded machine must not fail it
@given(AMOUNTS, st.sampled_from(sorted(SCALES)))
def test_k_m_b_suffixes_scale_the_number(value, suffix):
    written = (value / SCALES[suffix]).normalize()
    text = f"Volume is ${written:f}{suffix} today."
    (number,) = find_numbers(text)
    assert number.value == value and number.scaled and number.currency


@settings(deadline=None)  # no timed assertion: a loaded machine must not fail it
@given(st.integers(min_value=1, max_value=999_999_999).map(lambda n: n * 1000))
def test_korean_number_words_parse_back(whole):
    text = f"비트코인은 {_korean(whole)} 달러입니다."
    (number,) = find_numbers(text)
    assert number.value == whole and number.currency


@settings(deadline=None)  # no timed assertion: a loaded machine must not fail it
@given(st.decimals(min_value=Decimal("-99.99"), max_value=Decimal("99.99"), places=2))
def test_signed_percentages_parse_back(value):
    sign = "+" if value > 0 else ""
    (number,) = find_numbers(f"BTC moved {sign}{value:f}% today.")
    assert number.percent and number.value == value
    assert number.explicit_sign == (0 if value == 0 else (1 if value > 0 else -1))


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("9만 1천 달러", Decimal(91000), Decimal(1000)),
        ("9만1천달러", Decimal(91000), Decimal(1000)),
        ("9.1만 달러", Decimal(91000), Decimal(1000)),
        ("9만 7250달러", Decimal(97250), Decimal(1)),
        ("1억 2천만 원", Decimal(120_000_000), Decimal(10_000_000)),
        ("3천 달러", Decimal(3000), Decimal(1000)),
        ("$97.3K", Decimal(97300), Decimal(100)),
        ("1.25 million dollars", Decimal(1_250_000), Decimal(10_000)),
        ("+$20,000", Decimal(20000), Decimal(1)),
        ("-1.25%", Decimal("-1.25"), Decimal("0.01")),
    ],
)
def test_written_forms_carry_their_value_and_precision(text, value, unit):
    (number,) = find_numbers(text)
    assert (number.value, number.unit) == (value, unit)


def test_durations_dates_and_words_with_digits_are_not_numbers_of_their_own():
    assert [n.text for n in find_numbers("5m candles, 24h, Web3, v1.2 at 09:59:58 UTC on 2026-11-22")] == ["5"]
    assert "09:59" not in mask_dates("as of 09:59 UTC") and len(mask_dates("as of 09:59 UTC")) == 15


def test_dates_in_several_styles_are_read():
    texts = ["2026-11-20", "Nov 20", "November 20, 2026", "20 Nov 2026", "2026년 11월 20일", "11월 20일"]
    for text in texts:
        (found,) = find_dates(f"On {text} BTC peaked.", default_year=2026)
        assert found.day is not None and (found.day.month, found.day.day) == (11, 20), text


_TOKENS = st.sampled_from(
    [
        "BTC", "ETH", "비트코인", "is", "at", "up", "down", "above", "about", "the", "index", "Fear & Greed",
        "(Greed)", "Extreme Fear", "$", "%", "K", "만", "천", "달러", "-", "+", ".", ",", "\n", "1.", "2026-11-20",
        "09:59", "Nov 20", "24h", "you said", "if", "0", "100", "97,250.50", "3,413.28", "72", "2.31", "9", "1",
    ]
)  # fmt: skip


@settings(deadline=None)  # no timed assertion: a loaded machine must not fail it
@given(st.lists(_TOKENS, max_size=30).map(" ".join) | st.text(max_size=80))
def test_any_text_is_checked_without_error_and_every_span_points_at_its_figure(answer):
    for claim in check_answer(answer, corpus_facts(), question="is BTC at 150000?").claims:
        assert 0 <= claim.start < claim.end <= len(answer)
        assert answer[claim.start : claim.end].strip() == claim.text
