"""The lean MVP profile: the program it deploys, and that it still passes every mandatory rule."""

from __future__ import annotations

from typing import Any

import pytest
import sage_policies as policies
from policy_support import resource_violations, stack_violations
from sage_infra.config import ConfigError
from stack_record import StackRecord
from test_config import config


@pytest.mark.parametrize("policy", policies.RESOURCE_POLICIES, ids=lambda p: p.name)
def test_every_lean_resource_passes_the_mandatory_rules(lean: StackRecord, policy: Any) -> None:
    for resource in lean:
        if resource.custom:
            assert resource_violations(policy, resource.type, resource.inputs) == [], resource.name


@pytest.mark.parametrize("policy", policies.STACK_POLICIES, ids=lambda p: p.name)
def test_the_lean_stack_passes_the_mandatory_stack_rules(lean: StackRecord, policy: Any) -> None:
    assert stack_violations(policy, lean) == []


def test_one_nat_instance_replaces_the_nat_gateways(lean: StackRecord) -> None:
    assert lean.of_type("ec2/natGateway") == [] and lean.of_type("ec2/eip") == []
    instance = lean.one("ec2/instance")
    assert instance["instanceType"] == "t4g.nano" and instance["sourceDestCheck"] is False
    assert instance["ami"] == "ami-0fc4a7b1c2d3e4f50"  # the mocked fck-nat arm64 AMI lookup
    assert instance["metadataOptions"]["httpTokens"] == "required"
    assert instance["rootBlockDevice"]["encrypted"] is True
    assert instance["maintenanceOptions"] == {"autoRecovery": "default"}
    for table in [t for t in lean.of_type("ec2/routeTable") if t.name.startswith("network-private-rt")]:
        (route,) = table["routes"]
        assert route["networkInterfaceId"] == instance.state.get(
            "primaryNetworkInterfaceId", route["networkInterfaceId"]
        )
        assert "natGatewayId" not in route
    assert lean.named("network-database-rt")["routes"] == []


def test_lean_tasks_run_on_graviton_with_smaller_api_tasks(lean: StackRecord) -> None:
    for definition in lean.of_type("ecs/taskDefinition"):
        assert definition["runtimePlatform"]["cpuArchitecture"] == "ARM64", definition["family"]
    api = next(d for d in lean.of_type("ecs/taskDefinition") if d["family"] == "sage-backend")
    assert (api["cpu"], api["memory"]) == ("256", "1024")


def test_lean_data_stores_use_graviton_classes_and_one_cache_node(lean: StackRecord) -> None:
    assert lean.named("database-primary")["instanceClass"] == "db.t4g.micro"
    valkey = lean.one("elasticache/replicationGroup")
    assert (valkey["nodeType"], valkey["numCacheClusters"]) == ("cache.t4g.micro", 1)
    assert valkey["automaticFailoverEnabled"] is False and valkey["multiAzEnabled"] is False
    assert valkey["atRestEncryptionEnabled"] is True and valkey["transitEncryptionEnabled"] is True


def test_lean_turns_off_container_insights_and_logs_only_rejected_flows(lean: StackRecord) -> None:
    assert lean.one("ecs/cluster")["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    assert lean.one("ec2/flowLog")["trafficType"] == "REJECT"


def test_lean_keeps_the_edge_the_alarm_path_and_the_dr_copy(lean: StackRecord) -> None:
    assert lean.one("wafv2/webAcl") and lean.one("sqs/queue") and lean.one("s3/bucketReplicationConfig")
    assert lean.named("database-primary")["deletionProtection"] is True


def test_lean_is_an_mvp_profile_only() -> None:
    with pytest.raises(ConfigError, match="profile lean is a sizing of the mvp phase"):
        config(phase="growth", profile="lean")
