"""AWS WAF in front of CloudFront, the only way in (the ALB admits only CloudFront).

One web ACL in us-east-1 (CloudFront scope must live there): AWS's managed rule groups for
common exploits, known bad inputs and IP reputation, and two rate-based rules per client IP
(CloudFront's viewer address): the auth endpoints (credential stuffing; the app's own limit is
20 attempts a minute per IP, so WAF only stops floods) and posting chat messages (each one
spends model tokens). Blocked rate-limited requests get Sage's JSON error shape with 429.
Requests are logged to CloudWatch Logs (`aws-waf-logs-<prefix>-cdn`, the required prefix)
with the stack's retention. The ALB gets no web ACL: it takes nothing but CloudFront.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from sage_infra.common import child

MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
RATE_WINDOW_SECONDS = 300
# (rule name, URI path regex, requests per client IP per window)
RATE_RULES = (
    ("auth-per-ip", r"^/api/v1/auth/", 300),
    ("chat-messages-per-ip", r"^/api/v1/chats/[^/]+/messages$", 150),
)
TOO_MANY_BODY = '{"error": {"code": "rate_limited", "message": "Too many requests from this address; retry later"}}'


@dataclass(frozen=True)
class EdgeFirewallArgs:
    prefix: str
    tags: Mapping[str, str]
    log_retention_days: int


def _visibility(metric: str) -> dict[str, Any]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


class EdgeFirewall(pulumi.ComponentResource):
    web_acl: aws.wafv2.WebAcl

    def __init__(self, name: str, args: EdgeFirewallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:EdgeFirewall", name, None, opts)
        p = args.prefix
        tags = dict(args.tags)
        us_east_1 = aws.Provider(f"{name}-us-east-1", region="us-east-1", opts=child(self))
        there = pulumi.ResourceOptions(parent=self, provider=us_east_1)

        rules: list[dict[str, Any]] = [
            {
                "name": group,
                "priority": 10 * (index + 1),
                "override_action": {"none": {}},
                "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": group}},
                "visibility_config": _visibility(f"{p}-{group}"),
            }
            for index, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        for index, (rule, pattern, limit) in enumerate(RATE_RULES):
            rules.append(
                {
                    "name": rule,
                    "priority": 100 + index,
                    "action": {
                        "block": {"custom_response": {"response_code": 429, "custom_response_body_key": "too-many"}}
                    },
                    "statement": {
                        "rate_based_statement": {
                            "limit": limit,
                            "evaluation_window_sec": RATE_WINDOW_SECONDS,
                            "aggregate_key_type": "IP",
                            "scope_down_statement": {
                                "regex_match_statement": {
                                    "regex_string": pattern,
                                    "field_to_match": {"uri_path": {}},
                                    "text_transformations": [{"priority": 0, "type": "NONE"}],
                                }
                            },
                        }
                    },
                    "visibility_config": _visibility(f"{p}-{rule}"),
                }
            )
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-cdn",
            name=f"{p}-cdn",
            description="CloudFront: AWS managed rules and per-IP rate limits on auth and chat",
            scope="CLOUDFRONT",
            default_action={"allow": {}},
            custom_response_bodies=[{"key": "too-many", "content": TOO_MANY_BODY, "content_type": "APPLICATION_JSON"}],
            rules=rules,
            visibility_config=_visibility(f"{p}-cdn"),
            tags=tags,
            opts=there,
        )
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"aws-waf-logs-{p}-cdn",
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=there,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[logs.arn],
            # Never log the credentials and tokens the app's endpoints receive.
            redacted_fields=[
                {"single_header": {"name": "authorization"}},
                {"single_header": {"name": "cookie"}},
            ],
            opts=there,
        )
        self.register_outputs({"web_acl_arn": self.web_acl.arn})
