"""Sage's stack-wide CrossGuard policies: they follow references between resources.

Stack policies see every resource's outputs; `property_dependencies` leads from a property
(a rule's security group, an instance's subnet group, a service's task definition) to the
resources it refers to.
"""

from __future__ import annotations

import json
from typing import Any

from policy_common import (
    ANYWHERE,
    CACHE_GROUP,
    CACHE_SUBNET_GROUP,
    DB_SUBNET_GROUP,
    ECS_SERVICE,
    INGRESS_RULE,
    LB,
    LEGACY_RULE,
    MANDATORY,
    RDS_CLUSTER,
    RDS_INSTANCE,
    ROUTE,
    ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
    S3_BUCKET,
    S3_BUCKET_V2,
    S3_ENCRYPTION,
    S3_PUBLIC_ACCESS_BLOCK,
    SCALING_TARGET,
    SECURITY_GROUP,
    TASK_DEFINITION,
    WEB_PORTS,
    deps,
    of_type,
    to_int,
    to_list,
)
from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy
from sage_access_policies import alb_admits_only_cloudfront
from sage_alarm_policies import alarms_never_lost
from sage_infra import budget


def _s3_buckets_private_and_encrypted(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every bucket has an encryption configuration and all four public-access blocks."""
    buckets = of_type(args.resources, S3_BUCKET, S3_BUCKET_V2)
    encrypted: set[str] = set()
    blocked: set[str] = set()
    for res in of_type(args.resources, *S3_ENCRYPTION):
        rules = to_list(res.props.get("rules"))
        algorithms = {
            (r.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
            for r in rules
            if isinstance(r, dict)
        }
        if algorithms & {"AES256", "aws:kms", "aws:kms:dsse"}:
            encrypted.update(b.urn for b in deps(res, "bucket"))
    for res in of_type(args.resources, S3_PUBLIC_ACCESS_BLOCK):
        keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if all(res.props.get(k) is True for k in keys):
            blocked.update(b.urn for b in deps(res, "bucket"))
        else:
            report("S3 public access blocks must all be true.", res.urn)
    for bucket in buckets:
        if bucket.urn not in encrypted:
            report(f"S3 bucket {bucket.name} has no server-side encryption configuration.", bucket.urn)
        if bucket.urn not in blocked:
            report(f"S3 bucket {bucket.name} does not block public access.", bucket.urn)


s3_buckets_private_and_encrypted = StackValidationPolicy(
    name="s3-buckets-private-and-encrypted",
    description="Every S3 bucket is encrypted and blocks all public access.",
    enforcement_level=MANDATORY,
    validate=_s3_buckets_private_and_encrypted,
)


def _internet_route_tables(resources: list[PolicyResource]) -> set[str]:
    """URNs of route tables with a default route to an internet or NAT gateway."""
    urns: set[str] = set()
    for table in of_type(resources, ROUTE_TABLE):
        for route in to_list(table.props.get("routes")):
            to_internet = isinstance(route, dict) and route.get("cidrBlock") in ANYWHERE | {None}
            if to_internet and (route.get("gatewayId") or route.get("natGatewayId")):
                urns.add(table.urn)
    for route in of_type(resources, ROUTE):
        if route.props.get("gatewayId") or route.props.get("natGatewayId"):
            urns.update(t.urn for t in deps(route, "routeTableId"))
    return urns


def _data_tier_isolated(args: StackValidationArgs, report: ReportViolation) -> None:
    """Database and cache subnets have no internet route; their groups admit no CIDR at all."""
    resources = list(args.resources)
    internet_tables = _internet_route_tables(resources)
    subnet_tables: dict[str, set[str]] = {}
    for assoc in of_type(resources, ROUTE_TABLE_ASSOCIATION):
        for subnet in deps(assoc, "subnetId"):
            subnet_tables.setdefault(subnet.urn, set()).update(t.urn for t in deps(assoc, "routeTableId"))
    for group in of_type(resources, DB_SUBNET_GROUP, CACHE_SUBNET_GROUP):
        for subnet in deps(group, "subnetIds"):
            if subnet_tables.get(subnet.urn, set()) & internet_tables:
                report(f"{group.name}: subnet {subnet.name} routes to the internet.", group.urn)
            if not subnet_tables.get(subnet.urn):
                report(f"{group.name}: subnet {subnet.name} uses the VPC's main route table.", group.urn)
    data_groups: set[str] = set()
    for res in of_type(resources, RDS_INSTANCE, RDS_CLUSTER, CACHE_GROUP):
        for prop in ("vpcSecurityGroupIds", "securityGroupIds"):
            data_groups.update(g.urn for g in deps(res, prop))
    for rule in of_type(resources, INGRESS_RULE):
        guards_data = bool({g.urn for g in deps(rule, "securityGroupId")} & data_groups)
        by_address = rule.props.get("cidrIpv4") or rule.props.get("cidrIpv6") or rule.props.get("prefixListId")
        if guards_data and by_address:
            report(f"{rule.name}: the data tier accepts traffic only from security groups.", rule.urn)
    for group in of_type(resources, SECURITY_GROUP):
        if group.urn in data_groups:
            for rule in to_list(group.props.get("ingress")):
                if isinstance(rule, dict) and (rule.get("cidrBlocks") or rule.get("ipv6CidrBlocks")):
                    report(f"{group.name}: the data tier accepts traffic only from security groups.", group.urn)


data_tier_isolated = StackValidationPolicy(
    name="data-tier-isolated",
    description="Database and cache subnets have no internet route; their security groups admit no CIDR.",
    enforcement_level=MANDATORY,
    validate=_data_tier_isolated,
)

# --- open ingress ------------------------------------------------------------------------------


def _open_ingress_only_alb_web(args: StackValidationArgs, report: ReportViolation) -> None:
    resources = list(args.resources)
    alb_groups: set[str] = set()
    for lb in of_type(resources, *LB):
        if lb.props.get("loadBalancerType", "application") == "application":
            alb_groups.update(g.urn for g in deps(lb, "securityGroups"))

    def check(where: str, urn: str, group_urns: set[str], protocol: Any, low: Any, high: Any) -> None:
        web = str(protocol) in ("tcp", "6") and to_int(low, -1) == to_int(high, -2) and to_int(low, -1) in WEB_PORTS
        if not (group_urns & alb_groups and web):
            report(f"{where}: 0.0.0.0/0 ingress is allowed only on the ALB's ports 80 and 443.", urn)

    for rule in of_type(resources, INGRESS_RULE):
        if rule.props.get("cidrIpv4") in ANYWHERE or rule.props.get("cidrIpv6") in ANYWHERE:
            groups = {g.urn for g in deps(rule, "securityGroupId")}
            check(
                rule.name,
                rule.urn,
                groups,
                rule.props.get("ipProtocol"),
                rule.props.get("fromPort"),
                rule.props.get("toPort"),
            )
    for rule in of_type(resources, LEGACY_RULE):
        cidrs = set(to_list(rule.props.get("cidrBlocks"))) | set(to_list(rule.props.get("ipv6CidrBlocks")))
        if rule.props.get("type") == "ingress" and cidrs & ANYWHERE:
            groups = {g.urn for g in deps(rule, "securityGroupId")}
            check(
                rule.name,
                rule.urn,
                groups,
                rule.props.get("protocol"),
                rule.props.get("fromPort"),
                rule.props.get("toPort"),
            )
    for group in of_type(resources, SECURITY_GROUP):
        for rule in to_list(group.props.get("ingress")):
            if not isinstance(rule, dict):
                continue
            cidrs = set(to_list(rule.get("cidrBlocks"))) | set(to_list(rule.get("ipv6CidrBlocks")))
            if cidrs & ANYWHERE:
                check(
                    group.name, group.urn, {group.urn}, rule.get("protocol"), rule.get("fromPort"), rule.get("toPort")
                )


open_ingress_only_alb_web = StackValidationPolicy(
    name="open-ingress-only-alb-web",
    description="Ingress from 0.0.0.0/0 or ::/0 only on the application load balancer's TCP 80 and 443.",
    enforcement_level=MANDATORY,
    validate=_open_ingress_only_alb_web,
)

# --- connection budget -------------------------------------------------------------------------


def _database_clients(task_definition: PolicyResource) -> tuple[int, bool, str | None]:
    """Connections one task of this definition may open, whether it talks to PostgreSQL, and
    the group of tasks it never runs together with (budget.exclusive_group)."""
    raw = task_definition.props.get("containerDefinitions")
    containers = raw if isinstance(raw, list) else json.loads(raw) if isinstance(raw, str) and raw else []
    total, uses_db, group = 0, False, None
    for container in containers:
        env = {e.get("name"): e.get("value") for e in to_list(container.get("environment")) if isinstance(e, dict)}
        secret_names = {s.get("name") for s in to_list(container.get("secrets")) if isinstance(s, dict)}
        if "DATABASE_URL" not in env and "DATABASE_URL" not in secret_names:
            continue
        uses_db = True
        workers = to_int(env.get("SAGE_WORKERS"), 1)
        pool = to_int(env.get("SAGE_DB_POOL_SIZE"), 5)
        overflow = to_int(env.get("SAGE_DB_MAX_OVERFLOW"), 2)
        command = [str(c) for c in to_list(container.get("command"))]
        total += workers * (pool + overflow) + budget.tool_connections(command)
        group = group or budget.exclusive_group(command)
    return total, uses_db, group


def _connection_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    resources = list(args.resources)
    primaries = [r for r in of_type(resources, RDS_INSTANCE) if not r.props.get("replicateSourceDb")]
    if not primaries:
        return
    targets = of_type(resources, SCALING_TARGET)
    served: set[str] = set()
    workloads: list[budget.Workload] = []
    for service in of_type(resources, ECS_SERVICE):
        for definition in deps(service, "taskDefinition"):
            per_task, uses_db, _ = _database_clients(definition)
            served.add(definition.urn)
            if not uses_db:
                continue
            max_tasks = to_int(service.props.get("desiredCount"), 1)
            for target in targets:
                if service.urn in {d.urn for d in deps(target, "resourceId")}:
                    max_tasks = max(max_tasks, to_int(target.props.get("maxCapacity"), max_tasks))
            workloads.append(
                budget.Workload(
                    name=service.name,
                    max_tasks=max_tasks,
                    processes_per_task=1,
                    pool_size=per_task,
                    max_overflow=0,
                    # ECS's default maximum percent is 200.
                    deployment_maximum_percent=to_int(service.props.get("deploymentMaximumPercent"), 200),
                )
            )
    for definition in of_type(resources, TASK_DEFINITION):
        per_task, uses_db, group = _database_clients(definition)
        if uses_db and definition.urn not in served:
            workloads.append(budget.Workload(definition.name, 1, 1, per_task, 0, exclusive_group=group))
    for primary in primaries:
        instance_class = str(primary.props.get("instanceClass"))
        try:
            report_ = budget.evaluate(instance_class, workloads)
        except budget.UnknownInstanceClassError as exc:
            report(str(exc), primary.urn)
            continue
        if not report_.fits:
            report(report_.message(), primary.urn)


connection_budget = StackValidationPolicy(
    name="connection-budget",
    description="The processes' worst-case PostgreSQL connections fit the instance's max_connections.",
    enforcement_level=MANDATORY,
    validate=_connection_budget,
)


STACK_POLICIES: tuple[StackValidationPolicy, ...] = (
    s3_buckets_private_and_encrypted,
    data_tier_isolated,
    open_ingress_only_alb_web,
    connection_budget,
    alarms_never_lost,
    alb_admits_only_cloudfront,
)
