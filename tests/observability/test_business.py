"""The business channel: daily totals, the daily summary (once across tasks), the market digest."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sage.notify import Alert
from sage.observability.business import DailySummary, DayTotals, MarketDigest, summary_due, summary_fields
from sage.observability.metrics import Metrics
from sage.store.cache import Cache
from sage.store.cache_setup import create_backend


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
async def cache(valkey_url):
    cache = Cache(create_backend(valkey_url))
    yield cache
    await cache.close()


def test_day_totals_count_growth_since_the_start_of_the_utc_day():
    metrics, totals = Metrics(), DayTotals()
    metrics.incr("TokensUsed", 100, kind="input")
    assert totals.update(metrics.snapshot(), ts("2025-03-01T23:59:00")) == {"TokensUsed|kind=input": 100}
    metrics.incr("TokensUsed", 30, kind="input")
    metrics.observe("ChatTotalLatency", 900)
    today = totals.update(metrics.snapshot(), ts("2025-03-02T00:00:10"))
    assert today == {"TokensUsed|kind=input": 30, "ChatTotalLatency": 1}


def test_the_summary_of_yesterday_is_due_after_the_configured_hour_and_only_once():
    assert summary_due(ts("2025-03-02T00:00:30"), 0, 60, None) is None  # not before the delay
    assert summary_due(ts("2025-03-02T00:01:01"), 0, 60, None) == date(2025, 3, 1)
    assert summary_due(ts("2025-03-02T00:05:00"), 0, 60, date(2025, 3, 1)) is None
    assert summary_due(ts("2025-03-02T07:00:00"), 9, 60, None) is None
    assert summary_due(ts("2025-03-02T09:01:01"), 9, 60, None) == date(2025, 3, 1)


def test_summary_fields_report_users_tokens_alerts_and_portfolios():
    counters = {
        "TokensUsed|kind=input": 1_200_000,
        "TokensUsed|kind=output": 300_000,
        "TokensUsed|kind=cache_read": 2_000_000,
        "ChatTotalLatency": 840,
        "MarketAlertsSent|symbol=BTC/USDT": 12,
        "GroundingEvaluated": 800,
        "GroundingUnverified": 4,
    }
    gauges = {"ShadowPortfolios": 37, "ShadowPortfolioReturn": 2.345}
    fields = summary_fields(date(2025, 3, 1), 321, counters, gauges)
    assert fields["Daily active users"] == "321"
    assert fields["Chats answered"] == "840"
    assert fields["Tokens used"] == "cache_read 2.0M · input 1.2M · output 300.0K"
    assert fields["Market alerts sent"] == "12"
    assert fields["Unverified answers"] == "4 of 800 (0.50 %)"
    assert fields["Shadow portfolios"] == "37 · average return +2.35 %"


def test_summary_fields_say_when_no_portfolio_data_was_reported():
    assert summary_fields(date(2025, 3, 1), 0, {}, {})["Shadow portfolios"] == "no data reported"


async def test_the_daily_summary_adds_up_every_task_and_is_sent_by_exactly_one(cache):
    sent: list[Alert] = []

    async def active(day: date) -> int:
        return 42

    summaries = [
        DailySummary(cache, task=name, hour=0, delay=60, count_active=active, send=sent.append) for name in ("a", "b")
    ]
    for summary, tokens in zip(summaries, (100, 250), strict=True):
        metrics = Metrics()
        metrics.incr("TokensUsed", tokens, kind="output")
        metrics.incr("MarketAlertsSent", 3, symbol="ETH/USDT")
        await summary.tick(metrics.snapshot(), ts("2025-03-01T18:00:00"))
    for summary in summaries:
        await summary.tick(Metrics().snapshot(), ts("2025-03-02T00:02:00"))
    [alert] = [a for a in sent if a.title == "Daily summary for 2025-03-01"]
    assert alert.fields["Tokens used"] == "output 350"
    assert alert.fields["Market alerts sent"] == "6"
    assert alert.fields["Daily active users"] == "42"


async def test_other_domains_can_add_fields_to_the_daily_summary(cache):
    sent: list[Alert] = []

    async def active(day: date) -> int:
        return 0

    async def portfolios(day: date) -> dict[str, str]:
        return {"Best portfolio": "+12.5 %"}

    summary = DailySummary(cache, task="a", hour=0, delay=0, count_active=active, send=sent.append)
    summary.add_source("portfolio", portfolios)
    await summary.tick(Metrics().snapshot(), ts("2025-03-02T00:00:00"))
    assert sent[0].fields["Best portfolio"] == "+12.5 %"


def test_market_alerts_are_posted_as_one_digest_per_period():
    metrics, digest = Metrics(), MarketDigest(period=300)
    for _ in range(30):
        metrics.incr("MarketAlertsSent")
    metrics.incr("MarketAlertsSent", 1200)
    metrics.incr("NotificationsDelivered", 1231, channel="in_app")
    metrics.incr("NotificationsDelivered", 40, channel="email")
    metrics.incr("NotificationsFailed", 2, channel="email")
    assert digest.update(metrics.snapshot(), 0.0) is None
    metrics.incr("MarketAlertsSent")
    alert = digest.update(metrics.snapshot(), 300.0)
    assert alert is not None
    assert alert.title == "Market alerts fired: 1,231"
    assert alert.fields == {
        "Alerts fired": "1,231",
        "Delivered (email)": "40",
        "Delivered (in app)": "1,231",
        "Failed (email)": "2",
    }
    assert digest.update(metrics.snapshot(), 900.0) is None  # nothing new
