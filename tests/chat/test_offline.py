"""The offline provider: real, deterministic answers from the context, marked offline."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from sage.chat.context import ContextBuilder
from sage.chat.grounding import Facts, check_answer
from sage.chat.providers.offline import chunks, compose_answer
from sage.portfolio.service import summarize
from sage.store.chat_tables import ChatMessage
from tests.chat.support import FakeMarket, Quote, ask, new_chat, register
from tests.portfolio.support import Position as PortfolioPosition

CLOCK = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
QUESTIONS = [
    "How's the market?",
    "What is the BTC price?",
    "Which coin performed best today?",
    "What's the fear and greed index?",
    "How is my portfolio doing?",
    "eth vs sol?",
    "비트코인 가격 얼마야?",
    "Tell me about PEPE/USDT",
]


async def _context(question: str, *, market: FakeMarket | None = None, with_portfolio: bool = True):
    market = market or FakeMarket()
    positions = [
        PortfolioPosition(symbol="BTC/USDT", quantity=Decimal("0.5"), average_cost=Decimal("60000")),
        PortfolioPosition(symbol="XRP/USDT", quantity=Decimal("100"), average_cost=Decimal("0.5")),
    ]

    async def portfolio(_: uuid.UUID):
        quotes = {q.symbol: q for q in await market.consolidated(["BTC/USDT", "XRP/USDT"])}
        return summarize(positions, quotes, CLOCK)

    builder = ContextBuilder(
        market=market,
        portfolio=portfolio if with_portfolio else None,
        top_symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"],
        clock=lambda: CLOCK,
    )
    return await builder.build(user_id=uuid.uuid4(), question=question)


@pytest.mark.parametrize("question", QUESTIONS)
async def test_every_figure_in_an_offline_answer_is_grounded(question):
    context = await _context(question)
    answer = compose_answer(question, context)
    result = check_answer(answer, context.facts(), question=question)
    assert result.grounded, result.unverified


@pytest.mark.parametrize("question", QUESTIONS)
async def test_the_same_question_and_context_give_the_same_answer(question):
    first = compose_answer(question, await _context(question))
    second = compose_answer(question, await _context(question))
    assert first == second


async def test_the_answer_follows_the_question():
    price = compose_answer("What is the BTC price?", await _context("What is the BTC price?"))
    mood = compose_answer("fear and greed?", await _context("fear and greed?"))
    mine = compose_answer("how is my portfolio?", await _context("how is my portfolio?"))
    assert "BTC/USDT is at 97,250.50 USDT, up 2.31% over 24 hours" in price and "Fear & Greed" not in price
    assert "The Crypto Fear & Greed Index is 72 (Greed)" in mood and "USDT is at" not in mood
    assert "Your shadow portfolio is worth 48,625.25 against a cost of 30,000.00" in mine
    assert "XRP/USDT: 100 held, no current price" in mine
    assert "left out of the totals" in mine


async def test_movers_and_missing_symbols_are_stated():
    movers = compose_answer("Which coin performed best?", await _context("Which coin performed best?"))
    assert "the strongest is SOL/USDT (+5.20%) and the weakest is ETH/USDT (-1.25%)" in movers
    pepe = compose_answer("Tell me about PEPE/USDT", await _context("Tell me about PEPE/USDT"))
    assert "I have no market data for PEPE/USDT." in pepe


async def test_korean_questions_get_korean_answers():
    answer = compose_answer("비트코인 가격 얼마야?", await _context("비트코인 가격 얼마야?"))
    assert "BTC/USDT의 가격은 97,250.50 USDT이며, 24시간 변동률은 +2.31%입니다" in answer


async def test_without_market_data_it_quotes_no_prices():
    question = "How's the market?"
    answer = compose_answer(question, await _context(question, market=FakeMarket(fail=True), with_portfolio=False))
    assert "can't see live market data" in answer
    assert not check_answer(answer, Facts()).has_claims


async def test_stale_prices_are_flagged():
    market = FakeMarket()
    market.quotes["BTC/USDT"] = dataclasses.replace(market.quotes["BTC/USDT"], stale=True)
    answer = compose_answer("btc price?", await _context("btc price?", market=market))
    assert "stale" in answer


def test_chunks_reassemble_exactly():
    text = "BTC/USDT is at 97,250.50 USDT,\nup 2.31%  today."
    assert "".join(chunks(text, 2)) == text


async def test_offline_answers_stream_and_are_marked_offline(make_settings, database_url, valkey_url, live_server):
    server = await live_server(make_settings(database_url=database_url, valkey_url=valkey_url, llm_provider="offline"))
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "What is the ETH price?")
    assert "ETH/USDT is at 3,456.78 USDT, down 1.25% over 24 hours" in stream.text
    done = stream.last.data
    assert done["offline"] is True and done["provider"] == "offline"
    assert done["grounding"]["unverified"] == 0 and done["grounding"]["claims"] >= 2
    assert len(stream.named("delta")) > 1
    async with server.runtime.db.session() as session:
        row = (await session.execute(select(ChatMessage).where(ChatMessage.role == "assistant"))).scalar_one()
    assert row.meta["offline"] is True and row.content == stream.text


async def test_a_price_move_changes_the_offline_answer(
    make_settings, database_url, valkey_url, live_server, fake_market
):
    server = await live_server(make_settings(database_url=database_url, valkey_url=valkey_url, llm_provider="offline"))
    async with server.client() as client:
        headers = await register(client)
        before = await ask(client, headers, await new_chat(client, headers), "BTC price?")
        fake_market.quotes["BTC/USDT"] = Quote("BTC/USDT", Decimal("101000.00"), Decimal("6.00"))
        after = await ask(client, headers, await new_chat(client, headers), "BTC price?")
    assert "97,250.50" in before.text and "101,000.00" in after.text


async def test_a_portfolio_question_is_not_buried_in_every_price():
    question = "What's my portfolio worth?"
    answer = compose_answer(question, await _context(question))
    assert answer.startswith("Your shadow portfolio is worth")
    assert "ETH/USDT is at" not in answer


async def test_a_chunk_delay_paces_the_offline_answer_without_changing_it():
    from sage.chat.providers import build_model
    from sage.chat.providers.base import ChatTurn, ModelRequest, TextDelta
    from sage.settings import Settings

    question = "What is the BTC price?"
    context = await _context(question)
    paced = build_model(Settings(llm_provider="offline", llm_offline_chunk_delay_ms=5))
    assert getattr(paced, "chunk_delay_seconds", None) == 0.005
    request = ModelRequest(
        system="", turns=[ChatTurn("user", question)], max_tokens=1024, context=context, deadline=0.0
    )
    pieces = [event.text async for event in paced.stream(request) if isinstance(event, TextDelta)]
    assert pieces == chunks(compose_answer(question, context))
    assert Settings(llm_provider="offline").llm_offline_chunk_delay_ms == 0
