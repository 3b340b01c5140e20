"""Imports every table module so Base.metadata knows all tables (Alembic, tests)."""

from __future__ import annotations

from sage.store import tables  # noqa: F401
