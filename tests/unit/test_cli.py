"""The CLI explains itself and turns configuration mistakes into one line and a non-zero exit."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sage.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["db", "--help"], ["db", "upgrade", "--help"]])
def test_every_command_has_help(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_a_malformed_variable_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGE_PORT", "not-a-port")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "SAGE_PORT" in result.output and "Traceback" not in result.output


def test_production_with_a_placeholder_secret_refuses_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGE_ENV", "production")
    monkeypatch.setenv("SAGE_JWT_SECRET", "change-me")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/d")
    monkeypatch.setenv("VALKEY_URL", "valkey://h:6379/0")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert (
        result.output.strip().splitlines()[-1] == "sage: SAGE_JWT_SECRET is a development placeholder; set a real value"
    )


def test_anthropic_without_a_key_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("SAGE_LLM_PROVIDER", "anthropic")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "needs ANTHROPIC_API_KEY" in result.output and "Traceback" not in result.output
