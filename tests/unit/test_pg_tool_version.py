"""The major version of PostgreSQL's client tools, from `--version` as every build prints it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sage.ops.pgtools import tool_major


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ("pg_dump (PostgreSQL) 18.4", 18),
        ("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", 15),
        ("pg_dump (PostgreSQL) 18.1 (Debian 18.1-1.pgdg13+2)", 18),
        ("psql (PostgreSQL) 16.4 (Ubuntu 16.4-1.pgdg22.04+1)", 16),
        ("pg_restore (PostgreSQL) 18devel", 18),
        ("pg_dump (PostgreSQL) 18beta1", 18),
        ("pg_dump (PostgreSQL) 17rc1\n", 17),
        ("pg_dump (PostgreSQL) 9.6.24", 9),
    ],
)
def test_the_major_is_read_from_upstream_and_distribution_builds(output: str, major: int) -> None:
    assert tool_major(output) == major


@pytest.mark.parametrize("output", ["", "pg_dump: command not found", "pg_dump (PostgreSQL)", "pg_dump 18.1"])
def test_output_without_a_postgresql_version_has_no_major(output: str) -> None:
    assert tool_major(output) is None


@given(
    tool=st.sampled_from(["pg_dump", "pg_restore", "psql"]),
    major=st.integers(min_value=10, max_value=99),
    minor=st.integers(min_value=0, max_value=99),
    suffix=st.one_of(
        st.just(""),
        st.builds(
            lambda d, m, n: f" ({d} {m}.{n}-1.pgdg13+2)",
            st.sampled_from(["Debian", "Ubuntu"]),
            st.integers(10, 99),
            st.integers(0, 99),
        ),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-+~ ", max_size=30).map(lambda t: f" ({t})"),
    ),
)
def test_any_build_suffix_leaves_the_major_intact(tool: str, major: int, minor: int, suffix: str) -> None:
    assert tool_major(f"{tool} (PostgreSQL) {major}.{minor}{suffix}\n") == major
