"""`python -m sage_infra.cost`: priced from the deployed sizing, compared with the spec's $115."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sage_infra import cost
from sage_infra.sizing import PHASES, Phase

INFRA = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sage_infra.cost", *args], cwd=INFRA, capture_output=True, text=True, check=False
    )


def test_price_table_says_where_and_when_it_is_from() -> None:
    data = cost.load_prices()
    assert data["region"] == "us-west-2" and data["currency"] == "USD"
    assert data["as_of"] and all(url.startswith("https://aws.amazon.com/") for url in data["sources"].values())
    assert data["spec_mvp_estimate"]["total"] == 115


@pytest.mark.parametrize("phase", list(Phase))
def test_every_sized_class_has_a_price(phase: Phase) -> None:
    prices = cost.load_prices()["prices"]
    assert PHASES[phase].db_instance_class in prices["rds_postgres_instance_hour"]
    assert PHASES[phase].cache_node_type in prices["elasticache_valkey_node_hour"]


def test_mvp_table_compares_with_the_spec_and_names_what_it_left_out() -> None:
    result = run("--phase", "mvp")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Spec estimate (MVP): $115/month" in out
    for omitted in (
        "NAT gateways",
        "Public IPv4 addresses",
        "Secrets Manager",
        "CloudWatch alarms",
        "Container Insights",
    ):
        assert f"  - {omitted}" in out
    assert "us-west-2 prices as of" in out


def test_fargate_line_is_computed_from_the_phase_sizing() -> None:
    items = {i.name: i for i in cost.estimate(Phase.GROWTH)}
    hourly = 0.5 * 0.04048 + 1 * 0.004445
    api = items["ECS Fargate: API tasks"]
    assert api.baseline == round(5 * hourly * 730, 2)
    assert api.ceiling == round(10 * hourly * 730, 2)
    assert "db.t3.small Multi-AZ" in items["RDS PostgreSQL primary"].basis
    assert items["RDS read replicas"].basis.startswith("1 x db.t3.small")


def test_single_nat_gateway_is_cheaper() -> None:
    per_az = {i.name: i.baseline for i in cost.estimate(Phase.MVP, 2)}
    single = {i.name: i.baseline for i in cost.estimate(Phase.MVP, 1)}
    assert single["NAT gateways"] < per_az["NAT gateways"]
    assert single["Public IPv4 addresses"] < per_az["Public IPv4 addresses"]


def test_phases_cost_more_as_they_grow() -> None:
    totals = [cost.totals(cost.estimate(p))[0] for p in Phase]
    assert totals == sorted(totals)


def test_json_output_is_machine_readable() -> None:
    result = run("--phase", "scale", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["phase"] == "scale" and data["spec_mvp_total"] == 115
    assert data["baseline_total"] == pytest.approx(sum(i["baseline"] for i in data["items"]), abs=0.01)


def test_unknown_phase_is_a_usage_error() -> None:
    result = run("--phase", "huge")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr
