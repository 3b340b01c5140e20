"""Configuration: defaults, parsing, and production's refusal of placeholder secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sage.settings import ConfigurationError, LLMProvider, MarketSource, Settings

REAL_SECRET = "k8Jx2mQv9Lr4Tz7Wn3Bp6Yc1Hd5Gf0Sa"


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "jwt_secret": REAL_SECRET,
        "database_url": "postgresql://sage:pw@db:5432/sage",
        "valkey_url": "valkeys://cache:6379/0",
        "anthropic_api_key": "sk-ant-real-looking-key",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_spec_ttls_and_port_are_the_defaults() -> None:
    s = Settings()
    assert (s.port, s.cache_ttl_market_price, s.cache_ttl_fear_greed) == (3000, 300, 1800)
    assert (s.cache_ttl_user_chat_list, s.cache_ttl_ai_response) == (30, 300)


def test_pool_defaults_cannot_exhaust_a_micro_instance() -> None:
    s = Settings()
    per_task = s.workers * (s.db_pool_size + s.db_max_overflow)
    assert per_task == 7
    assert 10 * per_task + 2 * per_task < 85  # 10 API tasks + ingestor + migration under db.t3.micro's ~85


def test_embedded_default_replays_market_data_and_answers_offline() -> None:
    s = Settings()
    assert s.market_source is MarketSource.REPLAY
    assert s.llm_provider is LLMProvider.OFFLINE
    assert s.ingest_in_process is True


def test_production_defaults_to_live_market_data() -> None:
    assert production().market_source is MarketSource.LIVE


def test_symbols_are_parsed_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGE_SYMBOLS", "btc/usdt, eth_usdt ,SOL-USDT")
    assert Settings().symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def test_spec_names_are_read_without_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/d")
    monkeypatch.setenv("VALKEY_URL", "valkey://h:6379/0")
    s = Settings()
    assert (s.database_url, s.valkey_url) == ("postgresql://u@h/d", "valkey://h:6379/0")


def test_a_symbol_without_quote_currency_is_rejected() -> None:
    with pytest.raises(ValidationError, match="BASE/QUOTE"):
        Settings(symbols=["BTC"])


def test_production_with_real_secrets_starts() -> None:
    production().check_production()


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"jwt_secret": "change-me"}, "SAGE_JWT_SECRET"),
        ({"jwt_secret": "dev-only-insecure-jwt-secret-change-me"}, "SAGE_JWT_SECRET"),
        ({"database_url": None}, "DATABASE_URL"),
        ({"valkey_url": None}, "VALKEY_URL"),
        ({"anthropic_api_key": "change-me"}, "ANTHROPIC_API_KEY"),
        ({"anthropic_api_key": "   "}, "ANTHROPIC_API_KEY"),
        ({"web_push_enabled": True, "vapid_public_key": "BPub"}, "SAGE_VAPID_PRIVATE_KEY"),
        ({"web_push_enabled": True, "vapid_private_key": "priv", "vapid_public_key": ""}, "SAGE_VAPID_PUBLIC_KEY"),
    ],
)
def test_production_refuses_missing_or_placeholder_secrets(override: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        production(**override).check_production()
    message = str(info.value)
    assert variable in message and "\n" not in message
    assert "change-me" not in message  # the value itself is never echoed


def test_production_refuses_a_short_jwt_secret() -> None:
    with pytest.raises(ConfigurationError, match="SAGE_JWT_SECRET"):
        production(jwt_secret="tooShortButNotPlaceholder").check_production()


def test_web_push_is_opt_in_in_production_and_then_needs_both_vapid_keys() -> None:
    assert production().web_push_enabled is False
    production().check_production()
    production(web_push_enabled=True, vapid_private_key="priv", vapid_public_key="BPub").check_production()


def test_development_accepts_the_placeholder_jwt_secret() -> None:
    Settings().check_production()


def test_offline_provider_in_production_does_not_need_an_anthropic_key() -> None:
    production(anthropic_api_key=None, llm_provider="offline").check_production()


def test_anthropic_provider_without_a_key_is_refused_with_one_line() -> None:
    with pytest.raises(ValidationError, match="needs ANTHROPIC_API_KEY"):
        Settings(llm_provider="anthropic")
