import pytest
from hypothesis import given
from hypothesis import strategies as st

from sage.market.symbols import SymbolError, parse_symbol

ASSET = st.from_regex(r"[A-Z][A-Z0-9]{0,7}", fullmatch=True)


@pytest.mark.parametrize("raw", ["BTC", "btc", "BTCUSDT", "BTC/USDT", "btc_usdt", "BTC-USDT", " btc/usdt "])
def test_every_accepted_spelling_normalizes_to_base_slash_quote(raw):
    assert parse_symbol(raw) == "BTC/USDT"


def test_a_glued_pair_splits_on_the_longest_known_quote():
    assert parse_symbol("ETHBTC") == "ETH/BTC"
    assert parse_symbol("BTCFDUSD") == "BTC/FDUSD"
    assert parse_symbol("dogeusdc") == "DOGE/USDC"


def test_a_bare_quote_asset_is_read_as_a_base_against_usdt():
    assert parse_symbol("BTC") == "BTC/USDT"
    assert parse_symbol("ETH") == "ETH/USDT"


@pytest.mark.parametrize("raw", ["", "   ", "BTC/USDT/ETH", "B@C", "BTC/", "/USDT", "x" * 60])
def test_garbage_is_rejected_with_the_input_named(raw):
    with pytest.raises(SymbolError) as err:
        parse_symbol(raw)
    assert repr(raw) in str(err.value)


@given(base=ASSET, quote=ASSET, sep=st.sampled_from(["/", "_", "-"]), lower=st.booleans())
def test_separated_pairs_round_trip(base, quote, sep, lower):
    raw = f"{base}{sep}{quote}"
    assert parse_symbol(raw.lower() if lower else raw) == f"{base}/{quote}"
