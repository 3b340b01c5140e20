"""Application Load Balancer (spec 6.1): HTTPS from CloudFront only, health checks on /health, access logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, deny_insecure_transport, policy_document, private_bucket
from sage_infra.constants import (
    ALB_IDLE_TIMEOUT_SECONDS,
    APP_PORT,
    DEREGISTRATION_DELAY_SECONDS,
    HEALTH_PATH,
)

# TLS 1.3 and 1.2 only, forward-secret ciphers (AWS's recommended policy).
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ACCESS_LOG_PREFIX = "alb"
ACCESS_LOG_EXPIRY_DAYS = 90
# CloudFront adds this header (with the stack secret originVerifySecret) to every request it
# sends the ALB; the listener forwards only requests that carry it.
ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
NOT_VIA_CLOUDFRONT_BODY = '{"error": {"code": "forbidden", "message": "Use the API through https://app.sage.ai/api/"}}'


@dataclass(frozen=True)
class LoadBalancerArgs:
    prefix: str
    tags: Mapping[str, str]
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    certificate_arn: str
    protect: bool
    origin_verify_secret: pulumi.Input[str]


class LoadBalancer(pulumi.ComponentResource):
    alb: aws.lb.LoadBalancer
    target_group: aws.lb.TargetGroup
    https_listener: aws.lb.Listener
    logs_bucket: aws.s3.Bucket

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:LoadBalancer", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)

        self.logs_bucket = private_bucket(
            f"{name}-access-logs",
            tags=tags,
            parent=self,
            versioned=False,
            force_destroy=not args.protect,
            bucket_prefix=f"{p}-alb-logs-",
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs-lifecycle",
            bucket=self.logs_bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": f"{ACCESS_LOG_PREFIX}/"},
                    "expiration": {"days": ACCESS_LOG_EXPIRY_DAYS},
                }
            ],
            opts=child(self),
        )
        elb_account = aws.elb.get_service_account_output()
        account_id = aws.get_caller_identity_output().account_id
        logs_policy = aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=self.logs_bucket.id,
            policy=policy_document(
                [
                    {
                        "Sid": "AllowLoadBalancerAccessLogs",
                        "Effect": "Allow",
                        "Principal": {"AWS": elb_account.arn},
                        "Action": "s3:PutObject",
                        "Resource": pulumi.Output.concat(
                            self.logs_bucket.arn, f"/{ACCESS_LOG_PREFIX}/AWSLogs/", account_id, "/*"
                        ),
                    },
                    deny_insecure_transport(self.logs_bucket.arn),
                ]
            ),
            opts=child(self),
        )

        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=f"{p}-alb",
            internal=False,
            load_balancer_type="application",
            ip_address_type="ipv4",
            security_groups=[args.security_group_id],
            subnets=list(args.public_subnet_ids),
            enable_deletion_protection=args.protect,
            drop_invalid_header_fields=True,
            enable_http2=True,
            # Streamed chat answers send a keep-alive every 15 s; 70 s stays below the app's
            # 75 s HTTP keep-alive so the ALB never reuses a connection the app has closed.
            idle_timeout=ALB_IDLE_TIMEOUT_SECONDS,
            access_logs={"bucket": self.logs_bucket.bucket, "prefix": ACCESS_LOG_PREFIX, "enabled": True},
            tags={**tags, "Name": f"{p}-alb"},
            opts=child(self, depends_on=[logs_policy]),
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-backend",
            name=f"{p}-backend-tg",
            port=APP_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=DEREGISTRATION_DELAY_SECONDS,
            health_check={
                "enabled": True,
                "path": HEALTH_PATH,
                "protocol": "HTTP",
                "port": "traffic-port",
                "matcher": "200",
                "interval": 30,
                "timeout": 5,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            tags={**tags, "Name": f"{p}-backend-tg"},
            opts=child(self),
        )
        # Only requests CloudFront signed with the secret origin header reach the service; the
        # security group already admits only CloudFront's addresses, and the header keeps out
        # other people's distributions. Anything else gets a JSON 403 from the ALB itself.
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=SSL_POLICY,
            certificate_arn=args.certificate_arn,
            default_actions=[
                {
                    "type": "fixed-response",
                    "fixed_response": {
                        "content_type": "application/json",
                        "status_code": "403",
                        "message_body": NOT_VIA_CLOUDFRONT_BODY,
                    },
                }
            ],
            tags=tags,
            opts=child(self),
        )
        aws.lb.ListenerRule(
            f"{name}-from-cloudfront",
            listener_arn=self.https_listener.arn,
            priority=1,
            conditions=[
                {"http_header": {"http_header_name": ORIGIN_VERIFY_HEADER, "values": [args.origin_verify_secret]}}
            ],
            actions=[{"type": "forward", "target_group_arn": self.target_group.arn}],
            tags=tags,
            opts=child(self),
        )
        self.register_outputs({"dns_name": self.alb.dns_name})
