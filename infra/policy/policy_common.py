"""Resource-type tokens, limits and helpers the Sage policies share."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource

MANDATORY = EnforcementLevel.MANDATORY
PRODUCTION_ENVIRONMENTS = frozenset({"prod", "production"})
MIN_PROD_BACKUP_DAYS = 7
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})
WEB_PORTS = frozenset({80, 443})

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
CACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SNS_TOPIC = "aws:sns/topic:Topic"
SQS_QUEUE = "aws:sqs/queue:Queue"
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
S3_BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
S3_BUCKET_ACL = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
LB = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LB_LISTENER = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
CLOUDFRONT = "aws:cloudfront/distribution:Distribution"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
# The one tag an ECR repository may exempt from tag immutability.
ECR_MUTABLE_TAG = "latest"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
SCALING_TARGET = "aws:appautoscaling/target:Target"
LAMBDA = "aws:lambda/function:Function"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
DB_SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
CACHE_SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"

# ALB policies that negotiate nothing below TLS 1.2.
ALB_TLS12_POLICIES = frozenset(
    {
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
        "ELBSecurityPolicy-TLS-1-2-2017-01",
        "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
        "ELBSecurityPolicy-FS-1-2-2019-08",
        "ELBSecurityPolicy-FS-1-2-Res-2019-08",
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    }
)
CLOUDFRONT_TLS12_MINIMUMS = frozenset({"TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"})
BROAD_MANAGED_POLICY = re.compile(r"arn:aws[a-z-]*:iam::aws:policy/(AdministratorAccess|PowerUserAccess|.*FullAccess)$")
SECRET_ENV_NAME = re.compile(
    r"((^|_)(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIALS?|DSN)$)|WEBHOOK|^PGPASSWORD$",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"://[^/\s:@]+:[^/\s@]+@"  # URL with a password
    r"|sk-ant-"  # Anthropic key
    r"|discord(app)?\.com/api/webhooks/"  # Discord webhook
    r"|AKIA[0-9A-Z]{16}",  # AWS access key id
)

# --- helpers ---------------------------------------------------------------------------------


def to_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def tags_of(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props.get("tags") or props.get("tagsAll") or {}


def is_production(props: Mapping[str, Any]) -> bool:
    return str(tags_of(props).get("Environment", "")).lower() in PRODUCTION_ENVIRONMENTS


def parse_document(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in to_list(document.get("Statement")) if isinstance(s, dict)]


def wildcard_actions(document: Mapping[str, Any]) -> list[str]:
    """Allowed actions that are `*` or a whole service (`s3:*`), plus any NotAction grant."""
    found: list[str] = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            found.append("NotAction")
        for action in to_list(statement.get("Action")):
            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                found.append(action)
    return found


def deps(resource: PolicyResource, prop: str) -> list[PolicyResource]:
    return list(resource.property_dependencies.get(prop, []) or [])


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def to_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
