"""ElastiCache Valkey 8 (spec 4.1, 11.1)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from scenarios import SECRETS
from stack_record import StackRecord


def test_valkey_8_two_nodes_with_failover_across_azs(prod: StackRecord) -> None:
    group = prod.one("elasticache/replicationGroup")
    assert (group["engine"], group["engineVersion"]) == ("valkey", "8.0")
    assert group["numCacheClusters"] == 2
    assert group["automaticFailoverEnabled"] is True
    assert group["multiAzEnabled"] is True
    assert group["port"] == 6379


def test_encrypted_at_rest_and_in_transit_with_an_auth_token(prod: StackRecord) -> None:
    group = prod.one("elasticache/replicationGroup")
    assert group["atRestEncryptionEnabled"] is True
    assert group["transitEncryptionEnabled"] is True
    assert group["authToken"] == SECRETS["valkeyAuthToken"]
    assert "authToken" in group.secret_paths


def test_auth_token_is_stored_in_secrets_manager(prod: StackRecord) -> None:
    assert prod.one("secretsmanager/secret", "cache-auth-token")["name"] == "sage/valkey-auth-token"
    version = prod.one("secretsmanager/secretVersion", "cache-auth-token-value")
    assert version["secretString"] == SECRETS["valkeyAuthToken"]
    assert version.secret_paths == ("secretString",)


def test_snapshots_and_maintenance_follow_the_spec(prod: StackRecord) -> None:
    group = prod.one("elasticache/replicationGroup")
    assert group["snapshotRetentionLimit"] == 5
    assert group["snapshotWindow"] == "03:00-04:00"
    assert group["maintenanceWindow"] == "sun:05:00-sun:06:00"


def test_node_type_follows_the_phase(prod: StackRecord, growth: StackRecord, scale: StackRecord) -> None:
    nodes = {s.scenario: s.one("elasticache/replicationGroup")["nodeType"] for s in (prod, growth, scale)}
    assert nodes == {"prod-mvp": "cache.t3.micro", "prod-growth": "cache.t3.small", "prod-scale": "cache.r6g.large"}


def test_cache_lives_in_the_database_subnets(prod: StackRecord) -> None:
    (subnet_group,) = prod.resolve(prod.one("elasticache/replicationGroup").refers_to("subnetGroupName"))
    subnets = prod.resolve(subnet_group.refers_to("subnetIds"))
    assert {s["tags"]["Tier"] for s in subnets} == {"database"} and len(subnets) == 2


def test_valkey_url_secret_is_tls_with_the_quoted_token(prod: StackRecord) -> None:
    assert prod.one("secretsmanager/secret", "cache-url")["name"] == "sage/valkey-url"
    version = prod.one("secretsmanager/secretVersion", "cache-url-value")
    assert version.secret_paths == ("secretString",)
    url = urlsplit(version["secretString"])
    assert url.scheme == "valkeys", "TLS: the group requires in-transit encryption"
    assert unquote(url.password or "") == SECRETS["valkeyAuthToken"]
    assert "#" not in version["secretString"].split("@")[0], "the token is URL-quoted"
    assert url.hostname == "master.sage-valkey.abc123.usw2.cache.amazonaws.com" and url.port == 6379
