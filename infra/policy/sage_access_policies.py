"""Access rules: GitHub's roles trust one repository environment; CloudFront sits behind WAF and
is the only client of the load balancer.

Roles GitHub Actions may assume trust one repository's one environment, for AWS STS only.

A trust policy naming GitHub's OIDC provider without an exact `sub` lets any repository on
GitHub (or any branch, or a fork's pull request) assume the role; without `aud` the token may
have been minted for another service.
"""

from __future__ import annotations

from typing import Any

from policy_common import IAM_ROLE, INGRESS_RULE, LB, LEGACY_RULE, MANDATORY, deps, of_type, parse_document, statements
from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

GITHUB_ISSUER = "token.actions.githubusercontent.com"


def _trusts_github(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal") or {}
    federated = principal.get("Federated") if isinstance(principal, dict) else None
    return isinstance(federated, str) and federated.endswith(f"oidc-provider/{GITHUB_ISSUER}")


def _github_oidc_trust_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != IAM_ROLE:
        return
    for statement in statements(parse_document(args.props.get("assumeRolePolicy"))):
        if statement.get("Effect") != "Allow" or not _trusts_github(statement):
            continue
        equals = (statement.get("Condition") or {}).get("StringEquals") or {}
        audience = equals.get(f"{GITHUB_ISSUER}:aud")
        subject = equals.get(f"{GITHUB_ISSUER}:sub")
        subjects = subject if isinstance(subject, list) else [subject]
        pinned = all(isinstance(s, str) and s.startswith("repo:") and "*" not in s and "?" not in s for s in subjects)
        if audience != "sts.amazonaws.com" or subject is None or not pinned:
            report(
                "A role GitHub OIDC may assume must require aud sts.amazonaws.com and an exact sub "
                "(StringEquals repo:<owner>/<name>:environment:<name>, no wildcards).",
                None,
            )


github_oidc_trust_pinned = ResourceValidationPolicy(
    name="github-oidc-trust-pinned",
    description="Roles trusted by GitHub's OIDC provider require the STS audience and an exact subject.",
    enforcement_level=MANDATORY,
    validate=_github_oidc_trust_pinned,
)


# --- the edge (kept here with the other access rules) ------------------------------------------------
CLOUDFRONT_DISTRIBUTION = "aws:cloudfront/distribution:Distribution"


def _cloudfront_behind_waf(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == CLOUDFRONT_DISTRIBUTION and not args.props.get("webAclId"):
        report("A CloudFront distribution must have an AWS WAF web ACL (webAclId).", None)


cloudfront_behind_waf = ResourceValidationPolicy(
    name="cloudfront-behind-waf",
    description="Every CloudFront distribution is protected by a WAF web ACL.",
    enforcement_level=MANDATORY,
    validate=_cloudfront_behind_waf,
)


def _alb_admits_only_cloudfront(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every ingress rule of a load balancer's security groups names a prefix list (CloudFront's)."""
    resources = list(args.resources)
    guarded = {sg.urn for lb in of_type(resources, *LB) for sg in deps(lb, "securityGroups")}
    for rule in of_type(resources, INGRESS_RULE, LEGACY_RULE):
        if rule.resource_type == LEGACY_RULE and rule.props.get("type") != "ingress":
            continue
        if not guarded & {sg.urn for sg in deps(rule, "securityGroupId")}:
            continue
        if not (rule.props.get("prefixListId") or rule.props.get("prefixListIds")):
            report(
                "The load balancer admits only CloudFront: ingress must come from its managed prefix list.", rule.urn
            )


alb_admits_only_cloudfront = StackValidationPolicy(
    name="alb-admits-only-cloudfront",
    description="The ALB's security groups admit only CloudFront's origin-facing prefix list.",
    enforcement_level=MANDATORY,
    validate=_alb_admits_only_cloudfront,
)
