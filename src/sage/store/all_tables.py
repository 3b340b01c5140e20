"""Imports every table module so Base.metadata knows all tables (Alembic, tests)."""

from __future__ import annotations

from sage.store import (
    alert_tables,  # noqa: F401
    catalog_tables,  # noqa: F401
    chat_tables,  # noqa: F401
    market_tables,  # noqa: F401
    notification_tables,  # noqa: F401
    portfolio_tables,  # noqa: F401
    user_tables,  # noqa: F401
)
