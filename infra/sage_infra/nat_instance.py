"""A NAT instance (the fck-nat approach) instead of managed NAT gateways, for the lean profile.

A NAT gateway costs ~$33/month before its public address and per-GB processing; a t4g.nano
running fck-nat's AMI (Amazon Linux 2023 with IP forwarding and masquerading set up at boot,
https://fck-nat.dev) costs ~$3 plus its address and an 8 GB volume, with no per-GB charge.
One instance serves both private subnets. What that gives up: egress does not survive the
loss of its AZ until the instance is started elsewhere, and its throughput is the instance's
(up to 5 Gbit/s burst on t4g.nano), ample for the MVP's API calls to Anthropic and the exchanges.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from sage_infra.common import child
from sage_infra.constants import VPC_CIDR

FCK_NAT_OWNER = "568608671756"  # the AWS account fck-nat publishes its AMIs from
FCK_NAT_AMI_NAME = "fck-nat-al2023-*-arm64-ebs"
NAT_INSTANCE_TYPE = "t4g.nano"
NAT_VOLUME_GB = 8


def nat_instance(
    name: str,
    *,
    prefix: str,
    vpc_id: pulumi.Input[str],
    subnet_id: pulumi.Input[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.ec2.Instance:
    ami = aws.ec2.get_ami_output(
        most_recent=True,
        owners=[FCK_NAT_OWNER],
        filters=[
            {"name": "name", "values": [FCK_NAT_AMI_NAME]},
            {"name": "architecture", "values": ["arm64"]},
        ],
    )
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        name=f"{prefix}-nat",
        description="NAT instance: forwards the VPC's outbound traffic",
        vpc_id=vpc_id,
        tags={**tags, "Name": f"{prefix}-nat"},
        opts=child(parent),
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-from-vpc",
        security_group_id=group.id,
        ip_protocol="-1",
        cidr_ipv4=VPC_CIDR,
        description="anything the VPC sends out",
        tags=dict(tags),
        opts=child(parent),
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-to-internet",
        security_group_id=group.id,
        ip_protocol="-1",
        cidr_ipv4="0.0.0.0/0",
        description="the internet (Anthropic, exchanges, Discord)",
        tags=dict(tags),
        opts=child(parent),
    )
    return aws.ec2.Instance(
        name,
        ami=ami.id,
        instance_type=NAT_INSTANCE_TYPE,
        subnet_id=subnet_id,
        associate_public_ip_address=True,
        source_dest_check=False,  # it forwards other hosts' packets
        vpc_security_group_ids=[group.id],
        metadata_options={"http_tokens": "required", "http_endpoint": "enabled"},
        # EC2 restarts it on healthy hardware when a system status check fails (no alarm needed).
        maintenance_options={"auto_recovery": "default"},
        root_block_device={"encrypted": True, "volume_type": "gp3", "volume_size": NAT_VOLUME_GB},
        tags={**tags, "Name": f"{prefix}-nat"},
        opts=child(parent),
    )
