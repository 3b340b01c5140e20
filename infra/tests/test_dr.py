"""Recovery beyond one region: the backups are copied to the DR region, RDS backups too from growth."""

from __future__ import annotations

import pytest
from sage_infra.config import ConfigError
from stack_record import Resource, StackRecord, statements
from test_config import config


def replication(stack: StackRecord) -> Resource:
    return stack.one("s3/bucketReplicationConfig")


def dr_provider(stack: StackRecord) -> Resource:
    (provider,) = [r for r in stack.resources if r.type == "pulumi:providers:aws" and r.name == "dr-provider"]
    return provider


def test_every_backup_is_replicated_to_a_versioned_bucket_in_the_dr_region(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        config = replication(stack)
        source = next(b for b in stack.of_type("s3/bucket") if b.name == "backups-bucket")
        target = next(b for b in stack.of_type("s3/bucket") if b.name == "dr-bucket")
        assert stack.resolve(config.refers_to("bucket")) == [source]
        (rule,) = config["rules"]
        assert rule["status"] == "Enabled" and rule["filter"] == {}
        assert rule["destination"]["bucket"] == target.state["arn"]
        assert dr_provider(stack)["region"] == "us-east-2"
        versioning = [v for v in stack.of_type("s3/bucketVersioning") if v.refers_to("bucket") == [target.urn]]
        assert versioning and versioning[0]["versioningConfiguration"] == {"status": "Enabled"}


def test_copies_are_encrypted_with_a_kms_key_of_the_dr_region_and_deletions_stay_home(prod: StackRecord) -> None:
    (rule,) = replication(prod)["rules"]
    key = next(k for k in prod.of_type("kms/key") if k.name == "dr-key")
    assert rule["destination"]["encryptionConfiguration"] == {"replicaKmsKeyId": key.state["arn"]}
    assert key["enableKeyRotation"] is True
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}


def test_the_replication_role_reads_the_source_and_writes_only_the_copy(prod: StackRecord) -> None:
    (role,) = prod.resolve(replication(prod).refers_to("role"))
    assert "s3.amazonaws.com" in role["assumeRolePolicy"]
    (policy,) = [p for p in prod.of_type("iam/rolePolicy") if p.refers_to("role") == [role.urn]]
    by_sid = {s["Sid"]: s for s in statements(policy.json("policy"))}
    target = next(b for b in prod.of_type("s3/bucket") if b.name == "dr-bucket")
    assert by_sid["WriteReplicas"]["Resource"] == f"{target.state['arn']}/*"
    assert "s3:ReplicateDelete" not in by_sid["WriteReplicas"]["Action"]
    assert by_sid["EncryptReplicas"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-2.amazonaws.com"}}


def test_rds_automated_backups_are_replicated_from_growth_on(
    prod: StackRecord, growth: StackRecord, scale: StackRecord
) -> None:
    assert prod.of_type("rds/instanceAutomatedBackupsReplication") == []
    for stack in (growth, scale):
        replica = stack.one("rds/instanceAutomatedBackupsReplication")
        assert replica["sourceDbInstanceArn"] == stack.named("database-primary").state["arn"]
        assert replica["retentionPeriod"] == 7
        assert replica["kmsKeyId"] == next(k for k in stack.of_type("kms/key") if k.name == "dr-key").state["arn"]


def test_the_dr_region_must_be_another_region() -> None:
    with pytest.raises(ConfigError, match="drRegion must differ from the stack's region"):
        config(drRegion="us-west-2")
    assert config(drRegion="ap-northeast-2").dr_region == "ap-northeast-2"
