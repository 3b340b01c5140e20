"""ElastiCache Valkey 8 replication group (spec 4.1, 11.1): two nodes across AZs, TLS and AUTH."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws

from sage_infra.common import child
from sage_infra.constants import (
    CACHE_MAINTENANCE_WINDOW,
    CACHE_NODES,
    CACHE_SNAPSHOT_RETENTION_DAYS,
    CACHE_SNAPSHOT_WINDOW,
    VALKEY_PORT,
)
from sage_infra.secrets import stored_secret

ENGINE_VERSION = "8.0"
PARAMETER_GROUP = "default.valkey8"


@dataclass(frozen=True)
class CacheArgs:
    prefix: str
    tags: Mapping[str, str]
    node_type: str
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    auth_token: pulumi.Input[str]
    apply_immediately: bool
    secret_recovery_window_in_days: int
    nodes: int = CACHE_NODES


def valkey_url(primary_address: str, token: str) -> str:
    """The app's VALKEY_URL: `valkeys://` is TLS in valkey-py; the AUTH token is the password."""
    return f"valkeys://:{quote(token, safe='')}@{primary_address}:{VALKEY_PORT}/0"


def member_cluster_ids(replication_group_id: str, nodes: int = CACHE_NODES) -> list[str]:
    """ElastiCache names a replication group's nodes <id>-001, <id>-002, ..."""
    return [f"{replication_group_id}-{i + 1:03d}" for i in range(nodes)]


class Cache(pulumi.ComponentResource):
    replication_group: aws.elasticache.ReplicationGroup
    auth_token_secret: aws.secretsmanager.Secret
    url_secret: aws.secretsmanager.Secret

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:Cache", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)
        self.replication_group_id = f"{p}-valkey"

        self.auth_token_secret = stored_secret(
            f"{name}-auth-token",
            physical_name=f"{p}/valkey-auth-token",
            description="Valkey AUTH token",
            value=args.auth_token,
            recovery_window_in_days=args.secret_recovery_window_in_days,
            tags=tags,
            parent=self,
        )
        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=f"{p}-cache",
            description="Isolated database subnets (no route to the internet)",
            subnet_ids=list(args.subnet_ids),
            tags=tags,
            opts=child(self),
        )
        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-valkey",
            replication_group_id=self.replication_group_id,
            description="Sage Valkey (market state, pub/sub, rate limits)",
            engine="valkey",
            engine_version=ENGINE_VERSION,
            node_type=args.node_type,
            num_cache_clusters=args.nodes,
            port=VALKEY_PORT,
            parameter_group_name=PARAMETER_GROUP,
            subnet_group_name=subnet_group.name,
            security_group_ids=[args.security_group_id],
            # One node (the lean profile) cannot fail over: ElastiCache replaces it instead.
            automatic_failover_enabled=args.nodes > 1,
            multi_az_enabled=args.nodes > 1,
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            auth_token=args.auth_token,
            maintenance_window=CACHE_MAINTENANCE_WINDOW,
            snapshot_window=CACHE_SNAPSHOT_WINDOW,
            snapshot_retention_limit=CACHE_SNAPSHOT_RETENTION_DAYS,
            auto_minor_version_upgrade=True,
            apply_immediately=args.apply_immediately,
            tags={**tags, "Name": self.replication_group_id},
            opts=child(self),
        )
        self.url_secret = stored_secret(
            f"{name}-url",
            physical_name=f"{p}/valkey-url",
            description="The app's VALKEY_URL (embeds the AUTH token)",
            value=pulumi.Output.all(self.replication_group.primary_endpoint_address, args.auth_token).apply(
                lambda parts: valkey_url(str(parts[0]), str(parts[1]))
            ),
            recovery_window_in_days=args.secret_recovery_window_in_days,
            tags=tags,
            parent=self,
        )
        self.member_cluster_ids = member_cluster_ids(self.replication_group_id, args.nodes)
        self.register_outputs({"primary_endpoint": self.replication_group.primary_endpoint_address})
