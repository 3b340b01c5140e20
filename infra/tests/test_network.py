"""VPC, subnets, routes, NAT, flow logs and the default security group (spec 7.1)."""

from __future__ import annotations

from typing import Any

from stack_record import Resource, StackRecord, statements

PUBLIC = {"10.0.0.0/24", "10.0.1.0/24"}
PRIVATE = {"10.0.10.0/24", "10.0.11.0/24"}
DATABASE = {"10.0.20.0/24", "10.0.21.0/24"}


def subnets_by_tier(stack: StackRecord) -> dict[str, list[dict[str, Any]]]:
    tiers: dict[str, list[dict[str, Any]]] = {}
    for subnet in stack.of_type("ec2/subnet"):
        tiers.setdefault(subnet["tags"]["Tier"], []).append(subnet.inputs)
    return tiers


def route_tables_of(stack: StackRecord, tier: str) -> list[Resource]:
    """The route table each subnet of a tier is associated with."""
    subnets = {s.urn for s in stack.of_type("ec2/subnet") if s["tags"]["Tier"] == tier}
    tables = []
    for assoc in stack.of_type("ec2/routeTableAssociation"):
        if set(assoc.refers_to("subnetId")) & subnets:
            (table,) = stack.resolve(assoc.refers_to("routeTableId"))
            tables.append(table)
    assert len(tables) == 2, f"each {tier} subnet has its own association"
    return tables


def test_vpc_is_10_0_0_0_16_with_dns(prod: StackRecord) -> None:
    vpc = prod.one("ec2/vpc")
    assert vpc["cidrBlock"] == "10.0.0.0/16"
    assert vpc["enableDnsHostnames"] is True
    assert vpc["enableDnsSupport"] is True


def test_three_tiers_use_the_spec_cidrs(prod: StackRecord) -> None:
    tiers = subnets_by_tier(prod)
    assert {s["cidrBlock"] for s in tiers["public"]} == PUBLIC
    assert {s["cidrBlock"] for s in tiers["private"]} == PRIVATE
    assert {s["cidrBlock"] for s in tiers["database"]} == DATABASE


def test_every_tier_spans_two_availability_zones(prod: StackRecord) -> None:
    for tier, subnets in subnets_by_tier(prod).items():
        zones = [s["availabilityZone"] for s in subnets]
        assert len(zones) == 2 and len(set(zones)) == 2, tier
        assert set(zones) == {"us-west-2a", "us-west-2b"}, tier


def test_no_subnet_hands_out_public_ips(prod: StackRecord) -> None:
    assert all(s["mapPublicIpOnLaunch"] is False for s in prod.of_type("ec2/subnet"))


def test_public_subnets_route_to_the_internet_gateway(prod: StackRecord) -> None:
    igw = prod.one("ec2/internetGateway")
    for table in route_tables_of(prod, "public"):
        (route,) = table["routes"]
        assert route["cidrBlock"] == "0.0.0.0/0" and route["gatewayId"]
        assert table.refers_to("routes") == [igw.urn]


def test_database_subnets_have_no_route_out_of_the_vpc(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        tables = route_tables_of(stack, "database")
        assert all(t["routes"] == [] for t in tables), stack.scenario


def test_prod_has_one_nat_gateway_per_az_used_by_that_az(prod: StackRecord) -> None:
    nats = prod.of_type("ec2/natGateway")
    assert len(nats) == 2
    nat_subnets = [prod.resolve(n.refers_to("subnetId"))[0] for n in nats]
    assert {s["tags"]["Tier"] for s in nat_subnets} == {"public"}
    assert len({s["availabilityZone"] for s in nat_subnets}) == 2, "one NAT gateway in each AZ"
    zone_of_nat = {n.urn: s["availabilityZone"] for n, s in zip(nats, nat_subnets, strict=True)}
    for table in route_tables_of(prod, "private"):
        (route,) = table["routes"]
        assert route["cidrBlock"] == "0.0.0.0/0" and route["natGatewayId"]
        (nat_urn,) = table.refers_to("routes")
        private_subnet = next(
            prod.resolve(a.refers_to("subnetId"))[0]
            for a in prod.of_type("ec2/routeTableAssociation")
            if a.refers_to("routeTableId") == [table.urn]
        )
        assert zone_of_nat[nat_urn] == private_subnet["availabilityZone"], "each AZ leaves through its own NAT"


def test_dev_shares_a_single_nat_gateway(dev: StackRecord) -> None:
    assert len(dev.of_type("ec2/natGateway")) == 1
    assert len(dev.of_type("ec2/eip")) == 1
    (nat,) = dev.of_type("ec2/natGateway")
    assert all(t.refers_to("routes") == [nat.urn] for t in route_tables_of(dev, "private"))


def test_nat_gateways_have_elastic_ips(prod: StackRecord) -> None:
    eips = prod.of_type("ec2/eip")
    assert len(eips) == 2 and all(e["domain"] == "vpc" for e in eips)


def test_default_security_group_has_no_rules(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        default = stack.one("ec2/defaultSecurityGroup")
        assert default["ingress"] == [] and default["egress"] == []


def test_flow_logs_capture_all_traffic_to_a_retained_log_group(prod: StackRecord) -> None:
    flow = prod.one("ec2/flowLog")
    assert flow["trafficType"] == "ALL"
    assert flow["logDestinationType"] == "cloud-watch-logs"
    (group,) = prod.resolve(flow.refers_to("logDestination"))
    assert group["retentionInDays"] == 30
    (role,) = prod.resolve(flow.refers_to("iamRoleArn"))
    assert "vpc-flow-logs.amazonaws.com" in role["assumeRolePolicy"]


def test_s3_gateway_endpoint_serves_only_the_private_route_tables(prod: StackRecord) -> None:
    endpoint = prod.one("ec2/vpcEndpoint")
    assert endpoint["serviceName"] == "com.amazonaws.us-west-2.s3"
    assert endpoint["vpcEndpointType"] == "Gateway"
    tables = prod.resolve(endpoint.refers_to("routeTableIds"))
    assert len(tables) == 2 and all(t.name.startswith("network-private-rt") for t in tables)


def test_flow_log_role_writes_only_its_group_and_may_list_groups_account_wide(prod: StackRecord) -> None:
    (role,) = prod.resolve(prod.one("ec2/flowLog").refers_to("iamRoleArn"))
    (policy,) = [p for p in prod.of_type("iam/rolePolicy") if p.refers_to("role") == [role.urn]]
    by_sid = {s["Sid"]: s for s in statements(policy.json("policy"))}
    (group,) = prod.resolve(prod.one("ec2/flowLog").refers_to("logDestination"))
    arn = group.state["arn"]
    assert set(by_sid["WriteFlowLogs"]["Resource"]) == {arn, f"{arn}:*"}
    assert "logs:DescribeLogGroups" not in by_sid["WriteFlowLogs"]["Action"]
    # parliament: DescribeLogGroups has no resource-level permissions, so it must be "*".
    assert (by_sid["FindLogGroup"]["Action"], by_sid["FindLogGroup"]["Resource"]) == ("logs:DescribeLogGroups", "*")
