"""The edge: WAF on CloudFront (the only way in), rate limits per client IP, logs kept."""

from __future__ import annotations

import re

import pytest
from policy_support import resource_violations
from sage_infra.waf import MANAGED_RULE_GROUPS
from sage_policies import cloudfront_behind_waf
from stack_record import Resource, StackRecord


def web_acl(stack: StackRecord) -> Resource:
    return stack.one("wafv2/webAcl")


def rules(stack: StackRecord) -> dict[str, dict]:
    return {r["name"]: r for r in web_acl(stack)["rules"]}


def test_the_web_acl_guards_cloudfront_from_us_east_1(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        acl = web_acl(stack)
        assert acl["scope"] == "CLOUDFRONT"
        (provider,) = [r for r in stack.resources if r.type == "pulumi:providers:aws" and r.name == "waf-us-east-1"]
        assert provider["region"] == "us-east-1"
        assert stack.one("cloudfront/distribution")["webAclId"] == acl.state["arn"]


def test_aws_managed_rule_groups_run_first(prod: StackRecord) -> None:
    found = rules(prod)
    for group in MANAGED_RULE_GROUPS:
        assert found[group]["statement"]["managedRuleGroupStatement"] == {"vendorName": "AWS", "name": group}
        assert found[group]["overrideAction"] == {"none": {}}
    assert set(MANAGED_RULE_GROUPS) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }


@pytest.mark.parametrize(
    ("rule", "matching", "other"),
    [
        ("auth-per-ip", ["/api/v1/auth/login", "/api/v1/auth/register"], ["/api/v1/chats", "/api/v1/market/tickers"]),
        ("chat-messages-per-ip", ["/api/v1/chats/7f3a/messages"], ["/api/v1/chats", "/api/v1/chats/7f3a"]),
    ],
)
def test_rate_limits_per_client_ip_cover_auth_and_chat_messages(
    prod: StackRecord, rule: str, matching: list[str], other: list[str]
) -> None:
    statement = rules(prod)[rule]["statement"]["rateBasedStatement"]
    assert statement["aggregateKeyType"] == "IP" and statement["evaluationWindowSec"] == 300
    assert 10 <= statement["limit"] <= 1000
    regex = statement["scopeDownStatement"]["regexMatchStatement"]
    assert regex["fieldToMatch"] == {"uriPath": {}}
    assert all(re.search(regex["regexString"], path) for path in matching)
    assert not any(re.search(regex["regexString"], path) for path in other)
    block = rules(prod)[rule]["action"]["block"]["customResponse"]
    assert block["responseCode"] == 429


def test_blocked_requests_get_sages_json_error_shape(prod: StackRecord) -> None:
    (body,) = web_acl(prod)["customResponseBodies"]
    assert body["contentType"] == "APPLICATION_JSON" and '"error"' in body["content"]


def test_waf_logs_go_to_a_retained_log_group_without_credentials(prod: StackRecord) -> None:
    logging = prod.one("wafv2/webAclLoggingConfiguration")
    (group,) = prod.resolve(logging.refers_to("logDestinationConfigs"))
    assert group["name"] == "aws-waf-logs-sage-cdn" and group["retentionInDays"] == 30
    assert logging["resourceArn"] == web_acl(prod).state["arn"]
    redacted = {f["singleHeader"]["name"] for f in logging["redactedFields"]}
    assert redacted == {"authorization", "cookie"}


def test_a_distribution_without_a_web_acl_is_rejected() -> None:
    (found,) = resource_violations(cloudfront_behind_waf, "aws:cloudfront/distribution:Distribution", {"enabled": True})
    assert "web ACL" in found
