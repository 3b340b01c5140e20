"""The static web app: a private S3 bucket behind CloudFront (spec 5), plus /api/* to the ALB.

SPA fallback: a viewer-request CloudFront Function sends every path without a file extension
to /index.html (200). The spec's distribution-wide custom error responses (403/404 ->
/index.html) would also rewrite the API's own 403 and 404 JSON answers under /api/* into an
HTML page with status 200, so the fallback is scoped to the S3 behaviour instead. Missing
static files (paths with an extension) still answer 403/404 as they should.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, deny_insecure_transport, policy_document, private_bucket
from sage_infra.loadbalancer import ORIGIN_VERIFY_HEADER

# AWS-managed CloudFront policies (ids are global constants).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"
MINIMUM_PROTOCOL_VERSION = "TLSv1.2_2021"
S3_ORIGIN = "s3-frontend"
API_ORIGIN = "alb-api"
API_PATH = "/api/*"
# The ALB's idle timeout is 70 s and the app sends an SSE keep-alive every 15 s, so 60 s
# (CloudFront's ceiling without a quota increase) never cuts a live stream.
ORIGIN_READ_TIMEOUT_SECONDS = 60
ORIGIN_KEEPALIVE_SECONDS = 60

SPA_REWRITE = """function handler(event) {
  var request = event.request;
  var last = request.uri.split('/').pop();
  if (last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}
"""


@dataclass(frozen=True)
class FrontendArgs:
    prefix: str
    tags: Mapping[str, str]
    app_domain: str
    api_domain: str
    certificate_arn: str
    price_class: str
    protect: bool
    web_acl_arn: pulumi.Input[str]
    origin_verify_secret: pulumi.Input[str]
    www_domain: str | None = None  # spec 5.2: www.sage.ai, a second name for the app


class Frontend(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    distribution: aws.cloudfront.Distribution

    def __init__(self, name: str, args: FrontendArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:Frontend", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)

        self.bucket = private_bucket(
            f"{name}-bucket",
            tags=tags,
            parent=self,
            versioned=True,
            force_destroy=not args.protect,
            bucket_prefix=f"{p}-frontend-",
        )
        oac = aws.cloudfront.OriginAccessControl(
            f"{name}-oac",
            name=f"{p}-frontend",
            description="CloudFront reads the private frontend bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=child(self),
        )
        spa = aws.cloudfront.Function(
            f"{name}-spa-rewrite",
            name=f"{p}-spa-rewrite",
            runtime="cloudfront-js-2.0",
            comment="Serve index.html for client-side routes",
            code=SPA_REWRITE,
            publish=True,
            opts=child(self),
        )
        self.distribution = aws.cloudfront.Distribution(
            f"{name}-cdn",
            enabled=True,
            comment=f"{p} web app and API",
            aliases=[args.app_domain, *([args.www_domain] if args.www_domain else [])],
            web_acl_id=args.web_acl_arn,
            default_root_object="index.html",
            is_ipv6_enabled=True,
            http_version="http2and3",
            price_class=args.price_class,
            origins=[
                {
                    "origin_id": S3_ORIGIN,
                    "domain_name": self.bucket.bucket_regional_domain_name,
                    "origin_access_control_id": oac.id,
                },
                {
                    "origin_id": API_ORIGIN,
                    # A name the ALB's certificate covers (a DNS record points it at the ALB).
                    "domain_name": args.api_domain,
                    "custom_origin_config": {
                        "http_port": 80,
                        "https_port": 443,
                        "origin_protocol_policy": "https-only",
                        "origin_ssl_protocols": ["TLSv1.2"],
                        "origin_read_timeout": ORIGIN_READ_TIMEOUT_SECONDS,
                        "origin_keepalive_timeout": ORIGIN_KEEPALIVE_SECONDS,
                    },
                    # The ALB forwards only requests carrying it (loadbalancer.py).
                    "custom_headers": [{"name": ORIGIN_VERIFY_HEADER, "value": args.origin_verify_secret}],
                },
            ],
            default_cache_behavior={
                "target_origin_id": S3_ORIGIN,
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD", "OPTIONS"],
                "cached_methods": ["GET", "HEAD"],
                "compress": True,
                "cache_policy_id": CACHING_OPTIMIZED,
                "response_headers_policy_id": SECURITY_HEADERS,
                "function_associations": [{"event_type": "viewer-request", "function_arn": spa.arn}],
            },
            ordered_cache_behaviors=[
                {
                    "path_pattern": API_PATH,
                    "target_origin_id": API_ORIGIN,
                    # A redirect would drop a POST body; API clients must use HTTPS.
                    "viewer_protocol_policy": "https-only",
                    "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
                    "cached_methods": ["GET", "HEAD"],
                    # Nothing cached and nothing compressed at the edge: SSE chat streams pass
                    # through byte by byte.
                    "cache_policy_id": CACHING_DISABLED,
                    "origin_request_policy_id": ALL_VIEWER_EXCEPT_HOST_HEADER,
                    "compress": False,
                }
            ],
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate={
                "acm_certificate_arn": args.certificate_arn,
                "ssl_support_method": "sni-only",
                "minimum_protocol_version": MINIMUM_PROTOCOL_VERSION,
            },
            tags=tags,
            opts=child(self),
        )
        aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=self.bucket.id,
            policy=policy_document(
                [
                    {
                        "Sid": "CloudFrontReadsObjects",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudfront.amazonaws.com"},
                        "Action": "s3:GetObject",
                        "Resource": pulumi.Output.concat(self.bucket.arn, "/*"),
                        "Condition": {"StringEquals": {"AWS:SourceArn": self.distribution.arn}},
                    },
                    deny_insecure_transport(self.bucket.arn),
                ]
            ),
            opts=child(self),
        )
        self.register_outputs({"domain_name": self.distribution.domain_name})
