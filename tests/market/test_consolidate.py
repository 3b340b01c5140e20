from datetime import UTC, datetime
from decimal import Decimal

from sage.market.consolidate import consolidate
from tests.market.helpers import ticker

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def run(*tickers, stale_after=60.0, divergence=1.0):
    return consolidate(
        "BTC/USDT",
        {t.exchange: t for t in tickers},
        now=NOW,
        stale_after=stale_after,
        divergence_percent=divergence,
    )


def test_two_fresh_exchanges_give_their_mean_price_and_newest_time():
    price = run(ticker(last="100", at=NOW, age=5), ticker(last="101", exchange="gateio", at=NOW, age=1))
    assert price.price == Decimal("100.5")
    assert price.as_of == ticker(at=NOW, age=1).event_time
    assert not price.stale and not price.diverged
    assert set(price.exchanges) == {"binance", "gateio"}


def test_a_stale_exchange_is_left_out_of_the_price_but_not_out_of_the_divergence_check():
    price = run(ticker(last="100", at=NOW, age=120), ticker(last="90", exchange="gateio", at=NOW, age=1))
    assert price.price == Decimal("90")
    assert not price.stale
    assert price.diverged, "a frozen feed shows itself by drifting away from the live one"


def test_when_every_exchange_is_stale_the_freshest_price_is_served_marked_stale():
    price = run(ticker(last="100", at=NOW, age=300), ticker(last="100.2", exchange="gateio", at=NOW, age=90))
    assert price.price == Decimal("100.2")
    assert price.stale


def test_exchanges_that_disagree_by_more_than_the_threshold_are_flagged_diverged():
    assert run(ticker(last="100", at=NOW), ticker(last="101.5", exchange="gateio", at=NOW), divergence=1.0).diverged
    assert not run(ticker(last="100", at=NOW), ticker(last="100.9", exchange="gateio", at=NOW), divergence=1.0).diverged


def test_a_single_exchange_is_never_diverged():
    price = run(ticker(last="100", at=NOW))
    assert price.price == Decimal("100") and not price.diverged


def test_no_tickers_means_no_price():
    assert consolidate("BTC/USDT", {}, now=NOW, stale_after=60, divergence_percent=1) is None
