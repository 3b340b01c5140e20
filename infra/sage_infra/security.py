"""Security groups (spec 7.2): only CloudFront reaches the ALB; the data tier only the tasks.

Rules are separate resources so the ALB -> backend -> data chain can reference groups in both
directions without a dependency cycle. A group created without egress rules has none: the
provider revokes the default allow-all egress rule AWS adds at creation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child
from sage_infra.constants import APP_PORT, POSTGRES_PORT, VALKEY_PORT

ANYWHERE_V4 = "0.0.0.0/0"
CLOUDFRONT_ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"


@dataclass(frozen=True)
class SecurityGroupsArgs:
    prefix: str
    vpc_id: pulumi.Input[str]
    tags: Mapping[str, str]


class SecurityGroups(pulumi.ComponentResource):
    alb: aws.ec2.SecurityGroup
    backend: aws.ec2.SecurityGroup
    database: aws.ec2.SecurityGroup
    cache: aws.ec2.SecurityGroup

    def __init__(self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:SecurityGroups", name, None, opts)
        p = args.prefix

        def group(key: str, description: str) -> aws.ec2.SecurityGroup:
            return aws.ec2.SecurityGroup(
                f"{name}-{key}",
                name=f"{p}-{key}",
                description=description,
                vpc_id=args.vpc_id,
                tags={**args.tags, "Name": f"{p}-{key}"},
                opts=child(self),
            )

        self.alb = group("alb", "ALB: HTTPS from CloudFront only")
        self.backend = group("backend", "ECS tasks: the app port from the ALB only")
        self.database = group("database", "RDS PostgreSQL: from the ECS tasks only")
        self.cache = group("cache", "ElastiCache Valkey: from the ECS tasks only")

        def ingress(
            key: str, sg: aws.ec2.SecurityGroup, port: int, description: str, **source: pulumi.Input[str]
        ) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{key}",
                security_group_id=sg.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=description,
                tags=dict(args.tags),
                opts=child(self),
                **source,
            )

        # Only CloudFront reaches the ALB (AWS's managed list of its origin-facing addresses; the
        # listener also demands the secret origin header, so another CloudFront distribution
        # cannot use it). Nothing on the internet talks to the ALB directly, so no port 80 either.
        cloudfront = aws.ec2.get_managed_prefix_list_output(name=CLOUDFRONT_ORIGIN_FACING)
        ingress("alb-https", self.alb, 443, "HTTPS from CloudFront only", prefix_list_id=cloudfront.id)
        ingress(
            "backend-from-alb",
            self.backend,
            APP_PORT,
            "app port from the ALB",
            referenced_security_group_id=self.alb.id,
        )
        ingress(
            "database-from-backend",
            self.database,
            POSTGRES_PORT,
            "PostgreSQL from the ECS tasks",
            referenced_security_group_id=self.backend.id,
        )
        ingress(
            "cache-from-backend",
            self.cache,
            VALKEY_PORT,
            "Valkey from the ECS tasks",
            referenced_security_group_id=self.backend.id,
        )

        # The ALB only ever talks to the tasks (the spec allowed all egress; nothing needs it).
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-backend",
            security_group_id=self.alb.id,
            ip_protocol="tcp",
            from_port=APP_PORT,
            to_port=APP_PORT,
            referenced_security_group_id=self.backend.id,
            description="forward to the app port",
            tags=dict(args.tags),
            opts=child(self),
        )
        # Tasks call Binance, Gate.io, Alternative.me, Anthropic, Discord and AWS APIs via NAT.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-backend-egress",
            security_group_id=self.backend.id,
            ip_protocol="-1",
            cidr_ipv4=ANYWHERE_V4,
            description="all outbound",
            tags=dict(args.tags),
            opts=child(self),
        )
        self.register_outputs({})
