"""Monthly cost estimate from the same sizing the program deploys.

    cd infra && python -m sage_infra.cost --phase mvp [--nat per-az|single] [--json]

Prices and usage assumptions are data (sage_infra/prices.json: region, date, sources). The
table shows the month at the autoscaling minimum (baseline) and with every API task the
phase allows running all month (ceiling), then compares the MVP with the spec's $115 and
names what that estimate left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sage_infra.alarm_delivery import PATH_ALARMS
from sage_infra.alarms import alarm_count, alarm_metric_count
from sage_infra.constants import (
    AZ_COUNT,
    CACHE_NODES,
    DB_ALLOCATED_STORAGE_GB,
    STACK_SECRETS,
)
from sage_infra.nat_instance import NAT_INSTANCE_TYPE, NAT_VOLUME_GB
from sage_infra.sizing import INGESTOR_SIZE, LEAN_CACHE_NODES, LEAN_MVP, OPS_SIZE, PHASES, Phase, PhaseSizing
from sage_infra.waf import MANAGED_RULE_GROUPS, RATE_RULES

PRICES_FILE = Path(__file__).with_name("prices.json")
# Container Insights publishes about this many metrics per cluster and per service.
INSIGHTS_METRICS_PER_CLUSTER = 8
INSIGHTS_METRICS_PER_SERVICE = 11
ECS_SERVICES = 2
LOG_GROUPS_STORED_MONTHS = 1
BACKUP_TASK_MINUTES_PER_DAY = 15
VERIFY_TASK_MINUTES_PER_WEEK = 30
WEEKS_PER_MONTH = 30 / 7
# Each ALB node holds a public IPv4 address; one node per AZ.
ALB_PUBLIC_IPS = AZ_COUNT


@dataclass(frozen=True)
class LineItem:
    name: str
    basis: str
    baseline: float
    ceiling: float
    in_spec_estimate: bool
    # Pulumi type tokens of the resources the line pays for (a test finds them in the stack).
    resources: tuple[str, ...] = ()


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _fargate_hourly(cpu_units: int, memory_mib: int, prices: dict[str, Any], arm: bool = False) -> float:
    vcpu, gb = ("fargate_arm_vcpu_hour", "fargate_arm_gb_hour") if arm else ("fargate_vcpu_hour", "fargate_gb_hour")
    return float(cpu_units / 1024 * prices[vcpu] + memory_mib / 1024 * prices[gb])


def _cloudfront_rate(price_class: str, asia_share: float, prices: dict[str, Any]) -> float:
    """$/GB for the edges a price class serves from: PriceClass_100 serves Asia from US/EU edges."""
    rates = prices["cloudfront_gb_by_edge"]
    if price_class == "PriceClass_100":
        return float(rates["us_eu"])
    return float((1 - asia_share) * rates["us_eu"] + asia_share * rates["asia"])


def estimate(
    phase: Phase,
    nat_gateways: int = AZ_COUNT,
    data: dict[str, Any] | None = None,
    *,
    lean: bool = False,
    price_class: str = "PriceClass_200",
) -> list[LineItem]:
    """Monthly lines for a phase (or the lean MVP: sizing.LEAN_MVP, NAT instance, Graviton)."""
    if lean and phase is not Phase.MVP:
        raise ValueError("the lean profile is a sizing of the mvp phase")
    data = data or load_prices()
    p: dict[str, Any] = data["prices"]
    u: dict[str, float] = data["usage"][phase.value]
    free: dict[str, float] = data["free_tier"]
    hours = float(data["hours_per_month"])
    s: PhaseSizing = LEAN_MVP if lean else PHASES[phase]
    cache_nodes = LEAN_CACHE_NODES if lean else CACHE_NODES
    items: list[LineItem] = []

    def add(
        name: str, basis: str, baseline: float, ceiling: float | None = None, *, in_spec: bool, res: tuple[str, ...]
    ) -> None:
        items.append(
            LineItem(
                name, basis, round(baseline, 2), round(ceiling if ceiling is not None else baseline, 2), in_spec, res
            )
        )

    arch = "ARM64" if lean else "x86"
    api_hour = _fargate_hourly(s.api_cpu, s.api_memory, p, lean)
    add(
        "ECS Fargate: API tasks",
        f"{s.api_min_tasks}..{s.api_max_tasks} x {s.api_cpu / 1024:g} vCPU / {s.api_memory / 1024:g} GB {arch}",
        s.api_min_tasks * api_hour * hours,
        s.api_max_tasks * api_hour * hours,
        in_spec=True,
        res=("aws:ecs/service:Service", "aws:ecs/taskDefinition:TaskDefinition"),
    )
    add(
        "ECS Fargate: ingestor task",
        f"1 x {INGESTOR_SIZE.cpu / 1024:g} vCPU / {INGESTOR_SIZE.memory / 1024:g} GB {arch}",
        _fargate_hourly(INGESTOR_SIZE.cpu, INGESTOR_SIZE.memory, p, lean) * hours,
        in_spec=False,
        res=("aws:ecs/service:Service",),
    )
    ops_minutes = BACKUP_TASK_MINUTES_PER_DAY * 30 + VERIFY_TASK_MINUTES_PER_WEEK * WEEKS_PER_MONTH
    add(
        "ECS Fargate: backup + verify tasks",
        f"{BACKUP_TASK_MINUTES_PER_DAY} min/day + {VERIFY_TASK_MINUTES_PER_WEEK} min/week"
        f" x {OPS_SIZE.cpu / 1024:g} vCPU / {OPS_SIZE.memory / 1024:g} GB",
        _fargate_hourly(OPS_SIZE.cpu, OPS_SIZE.memory, p, lean) * ops_minutes / 60,
        in_spec=False,
        res=("aws:cloudwatch/eventTarget:EventTarget",),
    )
    az_factor = 2 if s.db_multi_az else 1
    db_hour = p["rds_postgres_instance_hour"][s.db_instance_class]
    add(
        "RDS PostgreSQL primary",
        f"{s.db_instance_class}{' Multi-AZ' if s.db_multi_az else ''}, {DB_ALLOCATED_STORAGE_GB} GB gp3",
        (db_hour * hours + DB_ALLOCATED_STORAGE_GB * p["rds_gp3_gb_month"]) * az_factor,
        in_spec=True,
        res=("aws:rds/instance:Instance",),
    )
    if s.db_read_replicas:
        add(
            "RDS read replicas",
            f"{s.db_read_replicas} x {s.db_instance_class}, {DB_ALLOCATED_STORAGE_GB} GB gp3",
            s.db_read_replicas * (db_hour * hours + DB_ALLOCATED_STORAGE_GB * p["rds_gp3_gb_month"]),
            in_spec=False,
            res=("aws:rds/instance:Instance",),
        )
    add(
        "ElastiCache Valkey",
        f"{cache_nodes} x {s.cache_node_type}",
        cache_nodes * p["elasticache_valkey_node_hour"][s.cache_node_type] * hours,
        in_spec=True,
        res=("aws:elasticache/replicationGroup:ReplicationGroup",),
    )
    add(
        "Application Load Balancer",
        f"1 ALB + {u['alb_lcu']:g} LCU average",
        (p["alb_hour"] + u["alb_lcu"] * p["alb_lcu_hour"]) * hours,
        in_spec=True,
        res=("aws:lb/loadBalancer:LoadBalancer",),
    )
    nat_addresses = nat_gateways
    if lean:
        nat_addresses = 1
        add(
            "NAT instance (fck-nat)",
            f"1 x {NAT_INSTANCE_TYPE} + {NAT_VOLUME_GB} GB gp3, no per-GB charge",
            p["ec2_instance_hour"][NAT_INSTANCE_TYPE] * hours + NAT_VOLUME_GB * p["ebs_gp3_gb_month"],
            in_spec=False,
            res=("aws:ec2/instance:Instance",),
        )
    else:
        add(
            "NAT gateways",
            f"{nat_gateways} x hours + {u['nat_gb']:g} GB processed",
            nat_gateways * p["nat_gateway_hour"] * hours + u["nat_gb"] * p["nat_gateway_gb"],
            in_spec=False,
            res=("aws:ec2/natGateway:NatGateway",),
        )
    add(
        "Public IPv4 addresses",
        f"{nat_addresses} NAT + {ALB_PUBLIC_IPS} ALB",
        (nat_addresses + ALB_PUBLIC_IPS) * p["public_ipv4_hour"] * hours,
        in_spec=False,
        res=("aws:lb/loadBalancer:LoadBalancer",),
    )
    add(
        "S3: frontend + backups",
        f"{u['frontend_gb']:g} GB + {u['backup_gb']:g} GB (half in Glacier), {u['s3_requests_1k']:g}k requests",
        u["frontend_gb"] * p["s3_standard_gb_month"]
        + u["backup_gb"] / 2 * (p["s3_standard_gb_month"] + p["s3_glacier_gb_month"])
        + u["s3_requests_1k"] * p["s3_requests_1k"],
        in_spec=True,
        res=("aws:s3/bucket:Bucket",),
    )
    add(
        "S3: backup copy in the DR region",
        f"{u['backup_replicated_gb']:g} GB Standard-IA + inter-region transfer",
        u["backup_replicated_gb"] * (p["s3_standard_ia_gb_month"] + p["inter_region_transfer_gb"]),
        in_spec=False,
        res=("aws:s3/bucketReplicationConfig:BucketReplicationConfig",),
    )
    rate = _cloudfront_rate(price_class, u["cloudfront_asia_share"], p)
    paid_gb = max(0.0, u["cloudfront_gb"] - free["cloudfront_gb"])
    paid_requests = max(0.0, u["cloudfront_requests_10k"] - free["cloudfront_requests_10k"])
    add(
        "CloudFront",
        f"{u['cloudfront_gb']:g} GB at ${rate:.4f}/GB ({price_class}, {u['cloudfront_asia_share']:.0%} Asia)"
        f" + {u['cloudfront_requests_10k'] / 100:g}M requests, 1 TB + 10M free",
        paid_gb * rate + paid_requests * p["cloudfront_https_10k"],
        in_spec=True,
        res=("aws:cloudfront/distribution:Distribution",),
    )
    waf_rules = len(MANAGED_RULE_GROUPS) + len(RATE_RULES)
    add(
        "AWS WAF (CloudFront)",
        f"1 web ACL + {waf_rules} rules + {u['waf_requests_1m']:g}M requests",
        p["waf_web_acl_month"] + waf_rules * p["waf_rule_month"] + u["waf_requests_1m"] * p["waf_requests_1m"],
        in_spec=False,
        res=("aws:wafv2/webAcl:WebAcl",),
    )
    add(
        "Data transfer out (not via CloudFront)",
        f"{u['internet_egress_gb']:g} GB, 100 GB free",
        max(0.0, u["internet_egress_gb"] - free["internet_egress_gb"]) * p["internet_egress_gb"],
        in_spec=True,
        res=(),
    )
    add(
        "CloudWatch Logs (app, Lambda, WAF)",
        f"{u['app_logs_gb']:g} GB ingested and stored, 5 GB free",
        max(0.0, u["app_logs_gb"] - free["logs_ingest_gb"]) * p["logs_ingest_gb"]
        + max(0.0, u["app_logs_gb"] - free["logs_storage_gb"]) * LOG_GROUPS_STORED_MONTHS * p["logs_storage_gb_month"],
        in_spec=True,
        res=("aws:cloudwatch/logGroup:LogGroup",),
    )
    flow_gb = u.get("flow_logs_reject_gb", u["flow_logs_gb"]) if lean else u["flow_logs_gb"]
    add(
        "VPC flow logs",
        f"{flow_gb:g} GB vended logs ({'rejected traffic only' if lean else 'all traffic'})",
        flow_gb * (p["vended_logs_ingest_gb"] + p["logs_storage_gb_month"]),
        in_spec=False,
        res=("aws:ec2/flowLog:FlowLog",),
    )
    if not lean:
        insights = INSIGHTS_METRICS_PER_CLUSTER + INSIGHTS_METRICS_PER_SERVICE * ECS_SERVICES
        add(
            "Container Insights metrics",
            f"~{insights} metrics",
            insights * p["custom_metric_month"],
            in_spec=False,
            res=("aws:ecs/cluster:Cluster",),
        )
    db_instances = 1 + s.db_read_replicas
    metrics = alarm_metric_count(db_instances=db_instances, cache_nodes=cache_nodes) + len(PATH_ALARMS)
    alarms = alarm_count(db_instances=db_instances, cache_nodes=cache_nodes) + len(PATH_ALARMS)
    add(
        "CloudWatch alarms",
        f"{alarms} alarms ({metrics} metrics, 10 free)",
        max(0, metrics - free["alarm_metrics"]) * p["alarm_metric_month"],
        in_spec=False,
        res=("aws:cloudwatch/metricAlarm:MetricAlarm",),
    )
    add(
        "Secrets Manager",
        f"{len(STACK_SECRETS)} secrets",
        len(STACK_SECRETS) * p["secret_month"],
        in_spec=False,
        res=("aws:secretsmanager/secret:Secret",),
    )
    add(
        "KMS keys (alerts, DR copy)",
        "2 customer-managed keys",
        2 * p["kms_key_month"],
        in_spec=False,
        res=("aws:kms/key:Key",),
    )
    add(
        "ECR storage",
        f"{u['ecr_gb']:g} GB of images",
        u["ecr_gb"] * p["ecr_gb_month"],
        in_spec=False,
        res=("aws:ecr/repository:Repository",),
    )
    add(
        "Lambda, SNS, SQS (alarm path)",
        "within the always-free tiers",
        0.0,
        in_spec=False,
        res=("aws:lambda/function:Function", "aws:sqs/queue:Queue", "aws:sns/topic:Topic"),
    )
    return items


def totals(items: list[LineItem]) -> tuple[float, float]:
    return round(sum(i.baseline for i in items), 2), round(sum(i.ceiling for i in items), 2)


def render(phase: Phase, items: list[LineItem], data: dict[str, Any], *, lean: bool = False) -> str:
    width = max(len(i.name) for i in items)
    basis_width = max(len(i.basis) for i in items)
    label = "lean-mvp" if lean else phase.value
    lines = [
        f"Sage monthly cost estimate - {label} ({PHASES[phase].mau} MAU), "
        f"{data['region']} prices as of {data['as_of']} ({data['currency']})",
        f"{'item':<{width}}  {'basis':<{basis_width}}  {'baseline':>9}  {'ceiling':>9}",
    ]
    for item in items:
        marker = "" if item.in_spec_estimate else "  *"
        lines.append(
            f"{item.name:<{width}}  {item.basis:<{basis_width}}  {item.baseline:>9.2f}  {item.ceiling:>9.2f}{marker}"
        )
    base, ceil = totals(items)
    lines.append(f"{'total':<{width}}  {'':<{basis_width}}  {base:>9.2f}  {ceil:>9.2f}")
    lines.append("baseline: API at its autoscaling minimum; ceiling: at its maximum all month.")
    lines.append("* not in the spec's estimate (Infrastructure Spec 10.1).")

    spec = data["spec_mvp_estimate"]
    left_out = [i for i in items if not i.in_spec_estimate]
    omitted = round(sum(i.baseline for i in left_out), 2)
    lines.append("")
    lines.append(f"Spec estimate (MVP): ${spec['total']}/month. This estimate ({label}, baseline): ${base:.2f}/month.")
    lines.append(f"The spec's estimate left out ${omitted:.2f}/month:")
    lines.extend(f"  - {i.name}: {i.basis} (${i.baseline:.2f})" for i in left_out)
    lines.append(
        "Not priced here: Sentry, the Anthropic API, Route 53, RDS backup replication (growth, scale: "
        "storage and transfer of the copied backups), Savings Plans / reserved instances (spec 10.2: "
        "-40% RDS, -30% ElastiCache from the growth phase), 12-month trial tiers. Always-free tiers are counted."
    )
    lines.append(f"Sources: {', '.join(data['sources'][k].split(' ')[0] for k in sorted(data['sources']))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sage_infra.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=[p.value for p in Phase], required=True)
    parser.add_argument("--nat", choices=["per-az", "single"], default="per-az", help="NAT gateways (dev uses single)")
    parser.add_argument(
        "--profile", choices=["standard", "lean"], default="standard", help="lean: the $115 MVP (mvp only)"
    )
    parser.add_argument(
        "--price-class", choices=["PriceClass_100", "PriceClass_200", "PriceClass_All"], default="PriceClass_200"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    phase = Phase(args.phase)
    lean = args.profile == "lean"
    if lean and phase is not Phase.MVP:
        parser.error("--profile lean applies to --phase mvp only")
    data = load_prices()
    items = estimate(phase, AZ_COUNT if args.nat == "per-az" else 1, data, lean=lean, price_class=args.price_class)
    if args.json:
        base, ceil = totals(items)
        print(
            json.dumps(
                {
                    "phase": phase.value,
                    "profile": args.profile,
                    "region": data["region"],
                    "as_of": data["as_of"],
                    "items": [asdict(i) for i in items],
                    "baseline_total": base,
                    "ceiling_total": ceil,
                    "spec_mvp_total": data["spec_mvp_estimate"]["total"],
                },
                indent=2,
            )
        )
    else:
        print(render(phase, items, data, lean=lean))
    return 0


if __name__ == "__main__":
    sys.exit(main())
