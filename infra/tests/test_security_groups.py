"""Security-group rules (spec 7.2): who may talk to whom, and nothing more."""

from __future__ import annotations

from stack_record import Resource, StackRecord


def group(stack: StackRecord, key: str) -> Resource:
    return stack.named(f"security-{key}")


def rules(stack: StackRecord, kind: str, key: str) -> list[Resource]:
    sg = group(stack, key)
    return [r for r in stack.of_type(f"vpc/securityGroup{kind}Rule") if r.refers_to("securityGroupId") == [sg.urn]]


def describe(stack: StackRecord, rule: Resource) -> tuple[str, int | None, int | None, str]:
    source = (
        rule.get("cidrIpv4")
        or rule.get("prefixListId")
        or stack.resolve(rule.refers_to("referencedSecurityGroupId"))[0].name
    )
    return rule["ipProtocol"], rule.get("fromPort"), rule.get("toPort"), source


def test_alb_accepts_https_from_cloudfronts_origin_facing_addresses_only(deployable: list[StackRecord]) -> None:
    # pl-82a045eb: the mocked id of com.amazonaws.global.cloudfront.origin-facing.
    for stack in deployable:
        assert [describe(stack, r) for r in rules(stack, "Ingress", "alb")] == [("tcp", 443, 443, "pl-82a045eb")]
        assert not [r for r in stack.of_type("vpc/securityGroupIngressRule") if r.get("cidrIpv4") == "0.0.0.0/0"]


def test_alb_only_forwards_to_the_app_port_of_the_tasks(prod: StackRecord) -> None:
    assert [describe(prod, r) for r in rules(prod, "Egress", "alb")] == [("tcp", 3000, 3000, "security-backend")]


def test_tasks_accept_port_3000_from_the_alb_group_only(prod: StackRecord) -> None:
    assert [describe(prod, r) for r in rules(prod, "Ingress", "backend")] == [("tcp", 3000, 3000, "security-alb")]


def test_tasks_may_call_out(prod: StackRecord) -> None:
    assert [describe(prod, r) for r in rules(prod, "Egress", "backend")] == [("-1", None, None, "0.0.0.0/0")]


def test_postgres_and_valkey_accept_only_the_task_group(prod: StackRecord) -> None:
    assert [describe(prod, r) for r in rules(prod, "Ingress", "database")] == [("tcp", 5432, 5432, "security-backend")]
    assert [describe(prod, r) for r in rules(prod, "Ingress", "cache")] == [("tcp", 6379, 6379, "security-backend")]


def test_data_tier_has_no_egress(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        assert rules(stack, "Egress", "database") == []
        assert rules(stack, "Egress", "cache") == []
        assert "egress" not in group(stack, "database").inputs, "no inline rules either"


def test_database_and_cache_use_their_groups(prod: StackRecord) -> None:
    db = prod.named("database-primary")
    assert prod.resolve(db.refers_to("vpcSecurityGroupIds")) == [group(prod, "database")]
    cache = prod.one("elasticache/replicationGroup")
    assert prod.resolve(cache.refers_to("securityGroupIds")) == [group(prod, "cache")]
