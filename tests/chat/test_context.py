"""The market context of a question and the system prompt built from it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sage.chat.context import ContextBuilder, mentioned_symbols
from sage.chat.grounding import check_answer
from sage.chat.providers.offline import compose_answer
from sage.portfolio.ledger import Entry, replay
from sage.portfolio.service import PortfolioSummary, summarize
from tests.chat.support import FakeMarket, Quote, Reading

KNOWN = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT", "DOGE/USDT"]
CLOCK = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("question", "symbols"),
    [
        ("What is btc doing?", ["BTC/USDT"]),
        ("Compare ETHUSDT and sol_usdt", ["ETH/USDT", "SOL/USDT"]),
        ("Is Bitcoin or ethereum stronger?", ["BTC/USDT", "ETH/USDT"]),
        ("비트코인은 어때? 이더리움도 궁금해", ["BTC/USDT", "ETH/USDT"]),
        ("What about PEPE/USDT?", ["PEPE/USDT"]),
        ("How is cardano?", ["ADA/USDT"]),
        ("Is AI OK for trading? Focus on status.", []),
        ("Is LINK a good link to OP?", ["LINK/USDT", "OP/USDT"]),
        ("USDT dominance?", []),
    ],
)
def test_mentioned_symbols(question, symbols):
    assert mentioned_symbols(question, KNOWN) == symbols


def _builder(market: FakeMarket | None, portfolio=None) -> ContextBuilder:
    return ContextBuilder(market=market, portfolio=portfolio, top_symbols=["BTC/USDT", "ETH/USDT"], clock=lambda: CLOCK)


async def test_the_context_holds_the_mentioned_symbols_else_the_top_ones():
    market = FakeMarket()
    mentioned = await _builder(market).build(user_id=uuid.uuid4(), question="and SOL?")
    general = await _builder(market).build(user_id=uuid.uuid4(), question="How's the market?")
    assert [p.symbol for p in mentioned.prices] == ["SOL/USDT"]
    assert [p.symbol for p in general.prices] == ["BTC/USDT", "ETH/USDT"]


async def test_the_prompt_carries_prices_changes_index_times_and_the_rule_on_figures():
    context = await _builder(FakeMarket()).build(user_id=uuid.uuid4(), question="btc?")
    prompt = context.system_prompt()
    assert "BTC/USDT: 97,250.50 USDT, 24h change +2.31% (as of 2026-11-22 09:59:58 UTC)" in prompt
    assert "Fear & Greed Index: 72 (Greed) (as of 2026-11-22 09:59:58 UTC" in prompt
    assert "Current time: 2026-11-22 10:00:00 UTC" in prompt
    assert "Rules" not in prompt and "<market_context>" in prompt  # only live data: the rules are cached apart


async def test_stale_and_diverged_prices_are_flagged_and_missing_symbols_named():
    market = FakeMarket()
    market.quotes["BTC/USDT"] = dataclasses.replace(market.quotes["BTC/USDT"], stale=True, diverged=True)
    context = await _builder(market).build(user_id=uuid.uuid4(), question="BTC and PEPE/USDT?")
    prompt = context.system_prompt()
    assert "[STALE" in prompt and "exchanges disagree" in prompt
    assert "No market data for: PEPE/USDT." in prompt


async def test_a_market_outage_leaves_a_context_that_says_so():
    market = FakeMarket(fail=True)
    context = await _builder(market).build(user_id=uuid.uuid4(), question="btc?")
    assert context.prices == () and not context.market_available
    assert "Market prices: unavailable right now." in context.system_prompt()
    assert "Fear & Greed Index: unavailable." in context.system_prompt()


def _ledger_summary(entries: list[Entry], quotes) -> PortfolioSummary:
    ledger = replay(entries)
    holdings = sorted(ledger.holdings.values(), key=lambda h: h.symbol)
    return summarize(holdings, quotes, CLOCK, ledger=ledger)


async def test_the_portfolio_summary_is_in_the_prompt_when_the_user_has_one():
    user_id = uuid.uuid4()
    at = CLOCK.replace(hour=1)
    entries = [
        Entry("deposit", None, Decimal(40_000), None, Decimal(0), at),
        Entry("buy", "BTC/USDT", Decimal("0.5"), Decimal(60_000), Decimal(0), at),
        Entry("buy", "ETH/USDT", Decimal(2), Decimal(4_000), Decimal(0), at),
    ]
    market = FakeMarket()

    async def portfolio(uid: uuid.UUID):
        quotes = {q.symbol: q for q in await market.consolidated(["BTC/USDT", "ETH/USDT"])}
        return _ledger_summary(entries, quotes)

    context = await _builder(market, portfolio).build(user_id=user_id, question="my portfolio?")
    prompt = context.system_prompt()
    assert (
        "- BTC/USDT: quantity 0.5, average cost 60,000.00, price 97,250.50, value 48,625.25, P&L +18,625.25 (+62.08%)"
        in prompt
    )
    assert "Holdings total: value 55,538.81, cost 38,000.00, unrealized P&L +17,538.81 (+46.15%)" in prompt
    # 2,000 left of the 40,000 deposited; equity 57,538.81 is a return of 17,538.81 on it
    assert (
        "Cash 2,000.00; equity (cash + priced holdings) 57,538.81; realized P&L 0.00; fees paid 0.00; "
        "total return on net deposits +17,538.81 (+43.85%)"
    ) in prompt
    labels = {f.label for f in context.facts()}
    assert {"portfolio value", "portfolio cash", "position:BTC/USDT pnl", "position:ETH/USDT quantity"} <= labels


async def test_a_cash_only_portfolio_is_described_as_cash_not_as_an_empty_portfolio_worth_nothing():
    market = FakeMarket()
    entries = [Entry("deposit", None, Decimal(10_000), None, Decimal(0), CLOCK.replace(hour=1))]

    async def portfolio(uid: uuid.UUID):
        return _ledger_summary(entries, {})

    context = await _builder(market, portfolio).build(user_id=uuid.uuid4(), question="my portfolio?")
    prompt = context.system_prompt()
    assert "- no positions: the portfolio is all cash, 10,000.00 USDT" in prompt
    assert "Cash 10,000.00; equity (cash + priced holdings) 10,000.00;" in prompt
    assert "Holdings total" not in prompt
    answer = compose_answer("What's my portfolio worth?", context)
    assert answer.startswith("Your shadow portfolio holds no coins yet: it is all cash, 10,000.00 USDT.")
    assert check_answer(answer, context.facts()).grounded


async def test_the_fingerprint_ignores_ticks_below_the_stated_precision_but_not_real_moves():
    market = FakeMarket()
    base = await _builder(market).build(user_id=uuid.uuid4(), question="btc?")
    market.quotes["BTC/USDT"] = Quote("BTC/USDT", Decimal("97251.20"), Decimal("2.33"))
    tick = await _builder(market).build(user_id=uuid.uuid4(), question="btc?")
    market.quotes["BTC/USDT"] = Quote("BTC/USDT", Decimal("97400.00"), Decimal("2.50"))
    move = await _builder(market).build(user_id=uuid.uuid4(), question="btc?")
    market.reading = Reading(40, "Fear")
    mood = await _builder(market).build(user_id=uuid.uuid4(), question="btc?")
    assert base.fingerprint() == tick.fingerprint()
    assert len({base.fingerprint(), move.fingerprint(), mood.fingerprint()}) == 3
