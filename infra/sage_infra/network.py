"""VPC across two AZs: public (ALB, NAT), private (tasks) and isolated database subnets (spec 7.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, policy_document, service_role
from sage_infra.constants import AZ_COUNT, DATABASE_SUBNET_CIDRS, PRIVATE_SUBNET_CIDRS, PUBLIC_SUBNET_CIDRS, VPC_CIDR
from sage_infra.nat_instance import nat_instance


@dataclass(frozen=True)
class NetworkArgs:
    prefix: str
    tags: Mapping[str, str]
    nat_gateway_count: int
    flow_log_retention_days: int
    region: str
    nat_instance: bool = False  # lean: one NAT instance instead of the gateways (nat_instance.py)
    flow_log_traffic: str = "ALL"  # lean: REJECT (what was refused: the security signal, ~1/5 the volume)


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    public_subnets: list[aws.ec2.Subnet]
    private_subnets: list[aws.ec2.Subnet]
    database_subnets: list[aws.ec2.Subnet]
    private_route_tables: list[aws.ec2.RouteTable]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:Network", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)

        def tagged(name: str, **extra: str) -> dict[str, str]:
            return {**tags, "Name": name, **extra}

        azs = aws.get_availability_zones_output(
            state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
        )

        def zone(index: int) -> pulumi.Output[str]:
            return azs.names.apply(lambda names: names[index])

        self.availability_zones = [zone(i) for i in range(AZ_COUNT)]

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tagged(f"{p}-vpc"),
            opts=child(self),
        )
        # With no rules the default group denies everything, so nothing can rely on it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=tagged(f"{p}-default-locked"),
            opts=child(self),
        )

        def subnets(tier: str, cidrs: tuple[str, ...]) -> list[aws.ec2.Subnet]:
            return [
                aws.ec2.Subnet(
                    f"{name}-{tier}-{i + 1}",
                    vpc_id=self.vpc.id,
                    cidr_block=cidr,
                    availability_zone=self.availability_zones[i],
                    # Only the ALB and NAT gateways live in public subnets; both get their
                    # addresses explicitly, so nothing launched there gets a public IP silently.
                    map_public_ip_on_launch=False,
                    tags=tagged(f"{p}-{tier}-{i + 1}", Tier=tier),
                    opts=child(self),
                )
                for i, cidr in enumerate(cidrs)
            ]

        self.public_subnets = subnets("public", PUBLIC_SUBNET_CIDRS)
        self.private_subnets = subnets("private", PRIVATE_SUBNET_CIDRS)
        self.database_subnets = subnets("database", DATABASE_SUBNET_CIDRS)

        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tagged(f"{p}-igw"), opts=child(self))
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags=tagged(f"{p}-public"),
            opts=child(self),
        )
        for i, subnet in enumerate(self.public_subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{i + 1}", subnet_id=subnet.id, route_table_id=public_rt.id, opts=child(self)
            )

        nats: list[aws.ec2.NatGateway] = []
        for i in range(args.nat_gateway_count):
            eip = aws.ec2.Eip(
                f"{name}-nat-eip-{i + 1}", domain="vpc", tags=tagged(f"{p}-nat-{i + 1}"), opts=child(self)
            )
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i + 1}",
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[i].id,
                    tags=tagged(f"{p}-nat-{i + 1}"),
                    opts=child(self, depends_on=[igw]),
                )
            )

        # One route table per AZ so each AZ leaves through its own NAT (or the shared one).
        instance = (
            nat_instance(
                f"{name}-nat-instance",
                prefix=p,
                vpc_id=self.vpc.id,
                subnet_id=self.public_subnets[0].id,
                tags=tags,
                parent=self,
            )
            if args.nat_instance
            else None
        )

        def default_route(i: int) -> dict[str, pulumi.Input[str]]:
            if instance is not None:
                return {"cidr_block": "0.0.0.0/0", "network_interface_id": instance.primary_network_interface_id}
            return {"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[i % len(nats)].id}

        self.private_route_tables = []
        for i, subnet in enumerate(self.private_subnets):
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i + 1}",
                vpc_id=self.vpc.id,
                routes=[default_route(i)],
                tags=tagged(f"{p}-private-{i + 1}"),
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{i + 1}", subnet_id=subnet.id, route_table_id=rt.id, opts=child(self)
            )
            self.private_route_tables.append(rt)

        # The data tier has no way out: only the implicit local route.
        self.database_route_table = aws.ec2.RouteTable(
            f"{name}-database-rt", vpc_id=self.vpc.id, routes=[], tags=tagged(f"{p}-database"), opts=child(self)
        )
        for i, subnet in enumerate(self.database_subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-database-rta-{i + 1}",
                subnet_id=subnet.id,
                route_table_id=self.database_route_table.id,
                opts=child(self),
            )

        # Image layers (ECR serves them from S3) and backups reach S3 without paying for NAT data.
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in self.private_route_tables],
            tags=tagged(f"{p}-s3"),
            opts=child(self),
        )

        flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/vpc/{p}/flow-logs",
            retention_in_days=args.flow_log_retention_days,
            tags=tags,
            opts=child(self),
        )
        flow_role = service_role(
            f"{name}-flow-logs-role",
            service="vpc-flow-logs.amazonaws.com",
            physical_name=f"{p}-vpc-flow-logs",
            description="VPC flow logs delivery to CloudWatch Logs",
            tags=tags,
            parent=self,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=flow_role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "WriteFlowLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        "Resource": [flow_log_group.arn, pulumi.Output.concat(flow_log_group.arn, ":*")],
                    },
                    {
                        # DescribeLogGroups lists groups account-wide: it has no resource-level
                        # permissions, so scoped to one group it never matches (parliament).
                        "Sid": "FindLogGroup",
                        "Effect": "Allow",
                        "Action": "logs:DescribeLogGroups",
                        "Resource": "*",
                    },
                ]
            ),
            opts=child(self),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type=args.flow_log_traffic,
            log_destination_type="cloud-watch-logs",
            log_destination=flow_log_group.arn,
            iam_role_arn=flow_role.arn,
            max_aggregation_interval=600,
            tags=tags,
            opts=child(self),
        )

        self.public_subnet_ids = [s.id for s in self.public_subnets]
        self.private_subnet_ids = [s.id for s in self.private_subnets]
        self.database_subnet_ids = [s.id for s in self.database_subnets]
        self.register_outputs({"vpc_id": self.vpc.id})
