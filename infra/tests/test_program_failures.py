"""Configurations the program refuses fail before a single resource is declared."""

from __future__ import annotations

from stack_record import StackRecord


def test_oversized_configuration_trips_the_connection_budget_before_any_resource(
    stack_runs: dict[str, StackRecord],
) -> None:
    run = stack_runs["oversized"]
    assert run.error is not None
    assert run.error["type"] == "BudgetExceededError"
    message = run.error["message"]
    # 20 API tasks x 7 + ingestor 3 + migration 3 + backup or verify-backup 3 + headroom 5.
    assert "worst case 154 connections vs 84 usable on db.t3.micro" in message
    assert run.resources == []


def test_missing_secret_is_a_one_line_error_naming_the_key(stack_runs: dict[str, StackRecord]) -> None:
    run = stack_runs["missing-secret"]
    assert run.error is not None
    assert run.error["type"] == "RunError"
    assert run.error["message"] == "sage-infra:jwtSecret is required (pulumi config set --secret jwtSecret ...)"
    assert run.resources == []


def test_a_router_path_without_the_handler_stops_before_any_resource(stack_runs: dict[str, StackRecord]) -> None:
    run = stack_runs["router-missing"]
    assert run.error is not None
    assert run.error["message"] == (
        "sage-infra:alarmRouterPath /nonexistent/alarm_router has no handler.py (the alarm router's code)"
    )
    assert run.resources == []
