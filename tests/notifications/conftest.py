"""Notifications tests: a local SMTP server, and the background loops slowed to once an hour
so each test decides when a tick or a delivery round happens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sage.settings import Settings
from tests.alerts.support import market_with
from tests.notifications.fake_smtp import FakeSmtp


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    server = FakeSmtp().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str, valkey_url: str, smtp: FakeSmtp) -> Settings:
    return make_settings(
        database_url=database_url,
        valkey_url=valkey_url,
        market_alert_check_seconds=3600,
        delivery_poll_seconds=3600,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        smtp_from="Sage Alerts <alerts@sage.test>",
        delivery_backoff_initial_seconds=0.01,
        delivery_lease_seconds=2,
        sse_keepalive_seconds=0.5,
    )


@pytest.fixture
def market_reader() -> Any:
    return market_with()
