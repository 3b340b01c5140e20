"""Alerts tests drive evaluation and delivery themselves: the background loops are slowed to
once an hour so a test decides when a tick happens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sage.settings import Settings
from tests.alerts.support import market_with


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str, valkey_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        valkey_url=valkey_url,
        market_alert_check_seconds=3600,
        delivery_poll_seconds=3600,
    )


@pytest.fixture
def market_reader() -> Any:
    return market_with()
