"""RDS PostgreSQL 18 (spec 3, 11.1, issue's database paragraph), per phase."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import pytest
from sage_infra.database import final_snapshot_identifier
from scenarios import SECRETS
from stack_record import StackRecord


def test_engine_storage_and_encryption(prod: StackRecord) -> None:
    db = prod.named("database-primary")
    assert (db["engine"], db["engineVersion"]) == ("postgres", "18")
    assert db["storageType"] == "gp3"
    assert db["storageEncrypted"] is True
    assert (db["allocatedStorage"], db["maxAllocatedStorage"]) == (20, 100)
    assert db["publiclyAccessible"] is False


def test_backups_and_maintenance_follow_the_spec(prod: StackRecord) -> None:
    db = prod.named("database-primary")
    assert db["backupRetentionPeriod"] == 7
    assert db["backupWindow"] == "03:00-04:00"
    assert db["maintenanceWindow"] == "mon:04:00-mon:05:00"
    assert db["copyTagsToSnapshot"] is True


def test_logs_insights_and_enhanced_monitoring(prod: StackRecord) -> None:
    db = prod.named("database-primary")
    assert db["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert db["performanceInsightsEnabled"] is True
    assert db["monitoringInterval"] == 60
    (role,) = prod.resolve(db.refers_to("monitoringRoleArn"))
    assert "monitoring.rds.amazonaws.com" in role["assumeRolePolicy"]


def test_prod_is_protected_and_keeps_a_final_snapshot(prod: StackRecord) -> None:
    db = prod.named("database-primary")
    assert db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False
    assert re.fullmatch(r"sage-postgres-final-\d{14}", db["finalSnapshotIdentifier"])
    assert db.protect is True, "pulumi destroy refuses too"


def test_the_final_snapshot_name_is_fixed_when_the_instance_is_created(prod: StackRecord) -> None:
    # RDS refuses a final snapshot name already taken: a replacement instance gets its own.
    assert "finalSnapshotIdentifier" in prod.named("database-primary").ignore_changes
    earlier = final_snapshot_identifier("sage-postgres", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    later = final_snapshot_identifier("sage-postgres", datetime(2026, 6, 1, 0, 0, 0, tzinfo=UTC))
    assert (earlier, later) == ("sage-postgres-final-20260102030405", "sage-postgres-final-20260601000000")


def test_read_replicas_export_their_logs_like_the_primary(scale: StackRecord) -> None:
    replicas = [r for r in scale.of_type("rds/instance") if r.get("replicateSourceDb")]
    assert len(replicas) == 2
    for replica in replicas:
        assert replica["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]


def test_dev_can_be_torn_down(dev: StackRecord) -> None:
    db = dev.named("database-primary")
    assert db["deletionProtection"] is False
    assert db["skipFinalSnapshot"] is True
    assert db.protect is False


def test_parameter_group_requires_tls_and_logs_slow_queries(prod: StackRecord) -> None:
    group = prod.one("rds/parameterGroup")
    assert group["family"] == "postgres18"
    params = {p["name"]: p["value"] for p in group["parameters"]}
    assert params["rds.force_ssl"] == "1"
    assert params["log_min_duration_statement"] == "1000"
    assert prod.resolve(prod.named("database-primary").refers_to("parameterGroupName")) == [group]


def test_database_lives_in_the_database_subnets(prod: StackRecord) -> None:
    (subnet_group,) = prod.resolve(prod.named("database-primary").refers_to("dbSubnetGroupName"))
    subnets = prod.resolve(subnet_group.refers_to("subnetIds"))
    assert {s["tags"]["Tier"] for s in subnets} == {"database"} and len(subnets) == 2


def test_instance_class_multi_az_and_replicas_follow_the_phase(
    prod: StackRecord, growth: StackRecord, scale: StackRecord
) -> None:
    expected = {prod: ("db.t3.micro", False, 0), growth: ("db.t3.small", True, 1), scale: ("db.r6g.large", True, 2)}
    for stack, (instance_class, multi_az, replicas) in expected.items():
        primary = stack.named("database-primary")
        assert (primary["instanceClass"], primary["multiAz"]) == (instance_class, multi_az), stack.scenario
        found = [r for r in stack.of_type("rds/instance") if r.get("replicateSourceDb")]
        assert len(found) == replicas, stack.scenario
        for replica in found:
            assert replica.refers_to("replicateSourceDb") == [primary.urn]
            assert replica["instanceClass"] == instance_class
            assert replica["storageEncrypted"] is True and replica["publiclyAccessible"] is False
            assert replica["deletionProtection"] is False, "a phase change back down may remove it"


def test_replica_endpoints_are_outputs(scale: StackRecord) -> None:
    endpoints = scale.output("rdsReplicaEndpoints")
    assert len(endpoints) == 2 and all(e.startswith("sage-postgres-replica-") for e in endpoints)


def test_master_password_is_a_secret_input(prod: StackRecord) -> None:
    db = prod.named("database-primary")
    assert db["password"] == SECRETS["dbMasterPassword"]
    assert "password" in db.secret_paths
    assert db["username"] == "sage_admin" and db["dbName"] == "sage"


@pytest.mark.parametrize(
    ("secret_name", "user", "password_key"),
    [
        ("database-url", "sage_app", "dbAppPassword"),
        ("database-url-owner", "sage_owner", "dbOwnerPassword"),
        ("database-url-readonly", "sage_readonly", "dbReadonlyPassword"),
        ("database-url-master", "sage_admin", "dbMasterPassword"),
    ],
)
def test_each_roles_database_url_embeds_its_quoted_password_and_requires_tls(
    prod: StackRecord, secret_name: str, user: str, password_key: str
) -> None:
    secret = prod.one("secretsmanager/secret", secret_name)
    assert secret["name"] == f"sage/{secret_name}"
    version = prod.one("secretsmanager/secretVersion", f"{secret_name}-value")
    assert version.secret_paths == ("secretString",)
    url = urlsplit(version["secretString"])
    assert url.scheme == "postgresql"
    assert url.username == user and unquote(url.password or "") == SECRETS[password_key]
    assert url.hostname == "sage-postgres.c9akciq32.us-west-2.rds.amazonaws.com" and url.port == 5432
    assert url.path == "/sage" and url.query == "sslmode=require"


def test_the_role_passwords_secret_holds_what_bootstrap_roles_sets(prod: StackRecord) -> None:
    version = prod.one("secretsmanager/secretVersion", "database-role-passwords-value")
    assert version.secret_paths == ("secretString",)
    assert json.loads(version["secretString"]) == {
        "owner": SECRETS["dbOwnerPassword"],
        "app": SECRETS["dbAppPassword"],
        "readonly": SECRETS["dbReadonlyPassword"],
    }


def test_infra_names_the_roles_the_app_creates() -> None:
    from sage_infra import constants

    from sage.ops import roles

    assert (constants.DB_OWNER_ROLE, constants.DB_APP_ROLE, constants.DB_READONLY_ROLE) == (
        roles.OWNER,
        roles.APP,
        roles.READONLY,
    )


def test_master_credentials_are_kept_in_rds_secret_shape(prod: StackRecord) -> None:
    version = prod.one("secretsmanager/secretVersion", "database-master-credentials-value")
    assert "secretString" in version.secret_paths
    creds = json.loads(version["secretString"])
    assert creds["username"] == "sage_admin" and creds["password"] == SECRETS["dbMasterPassword"]
    assert creds["engine"] == "postgres" and creds["port"] == 5432 and creds["dbname"] == "sage"
