"""`python -m sage_infra.cost`: priced from the deployed sizing, compared with the spec's $115."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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


# --- the lean MVP ------------------------------------------------------------------------------------


def test_the_lean_mvp_stays_within_the_specs_115_dollars() -> None:
    items = cost.estimate(Phase.MVP, lean=True)
    baseline, _ = cost.totals(items)
    assert baseline <= 115.00, cost.render(Phase.MVP, items, cost.load_prices(), lean=True)
    standard, _ = cost.totals(cost.estimate(Phase.MVP))
    assert baseline < standard


def test_the_lean_profile_swaps_nat_gateways_for_an_instance_and_prices_graviton() -> None:
    lean = {i.name: i for i in cost.estimate(Phase.MVP, lean=True)}
    assert "NAT gateways" not in lean and "Container Insights metrics" not in lean
    assert lean["NAT instance (fck-nat)"].basis.startswith("1 x t4g.nano")
    assert "ARM64" in lean["ECS Fargate: API tasks"].basis
    assert lean["RDS PostgreSQL primary"].basis.startswith("db.t4g.micro")
    assert lean["ElastiCache Valkey"].basis == "1 x cache.t4g.micro"


def test_each_lean_line_is_paid_for_resources_the_lean_stack_declares(lean: Any) -> None:
    declared = {r.type for r in lean.resources}
    for item in cost.estimate(Phase.MVP, lean=True):
        missing = set(item.resources) - declared
        assert not missing, f"{item.name}: {missing}"


def test_each_standard_mvp_line_is_paid_for_resources_the_stack_declares(prod: Any) -> None:
    declared = {r.type for r in prod.resources}
    for item in cost.estimate(Phase.MVP):
        assert not set(item.resources) - declared, item.name


def test_the_cloudfront_line_is_priced_for_the_edges_its_price_class_uses() -> None:
    prices = cost.load_prices()["prices"]
    assert cost._cloudfront_rate("PriceClass_100", 0.3, prices) == prices["cloudfront_gb_by_edge"]["us_eu"]
    assert cost._cloudfront_rate("PriceClass_200", 0.3, prices) > prices["cloudfront_gb_by_edge"]["us_eu"]
    scale_100 = {i.name: i.baseline for i in cost.estimate(Phase.SCALE, price_class="PriceClass_100")}
    scale_200 = {i.name: i.baseline for i in cost.estimate(Phase.SCALE, price_class="PriceClass_200")}
    assert scale_100["CloudFront"] < scale_200["CloudFront"]


def test_always_free_tiers_are_counted() -> None:
    mvp = {i.name: i for i in cost.estimate(Phase.MVP)}
    assert mvp["CloudFront"].baseline == 0.0  # 100 GB and 1M requests sit inside 1 TB and 10M free
    assert mvp["Data transfer out (not via CloudFront)"].baseline == 0.0


def test_lean_is_only_an_mvp_profile() -> None:
    result = run("--phase", "growth", "--profile", "lean")
    assert result.returncode == 2 and "--profile lean applies to --phase mvp only" in result.stderr
