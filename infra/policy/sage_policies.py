"""Sage's CrossGuard policies: the rules no deployment may break (enforcement: mandatory).

This module only defines policies; `policy/__main__.py` packs them (constructing a PolicyPack
starts the analyzer server), so tests import these objects and call `validate` directly.
Properties are Pulumi's wire names (camelCase). Resource policies see a resource's inputs;
stack policies see every resource's outputs and follow `property_dependencies` to the
resources a property refers to (a rule's security group, an instance's subnet group, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policy_common import (
    ALB_TLS12_POLICIES,
    BROAD_MANAGED_POLICY,
    CACHE_GROUP,
    CLOUDFRONT,
    CLOUDFRONT_TLS12_MINIMUMS,
    ECR_MUTABLE_TAG,
    ECR_REPOSITORY,
    IAM_ATTACHMENT,
    IAM_POLICY,
    IAM_ROLE,
    IAM_ROLE_POLICY,
    LAMBDA,
    LB_LISTENER,
    LOG_GROUP,
    MANDATORY,
    MIN_PROD_BACKUP_DAYS,
    RDS_CLUSTER,
    RDS_INSTANCE,
    S3_BUCKET_ACL,
    S3_BUCKET_POLICY,
    SECRET_ENV_NAME,
    SECRET_VALUE,
    SNS_TOPIC,
    SQS_QUEUE,
    TASK_DEFINITION,
    is_production,
    parse_document,
    statements,
    to_int,
    to_list,
    wildcard_actions,
)
from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy
from sage_access_policies import cloudfront_behind_waf, github_oidc_trust_pinned
from sage_stack_policies import (
    STACK_POLICIES,
    alarms_never_lost,
    alb_admits_only_cloudfront,
    connection_budget,
    data_tier_isolated,
    open_ingress_only_alb_web,
    s3_buckets_private_and_encrypted,
)

# --- storage encryption ------------------------------------------------------------------------


def _storage_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type in (RDS_INSTANCE, RDS_CLUSTER) and props.get("storageEncrypted") is not True:
        report("RDS storage must be encrypted (storageEncrypted: true).", None)
    elif args.resource_type == CACHE_GROUP:
        if props.get("atRestEncryptionEnabled") is not True:
            report("ElastiCache must encrypt at rest (atRestEncryptionEnabled: true).", None)
        if props.get("transitEncryptionEnabled") is not True:
            report("ElastiCache must encrypt in transit (transitEncryptionEnabled: true).", None)
    elif args.resource_type == SNS_TOPIC and not props.get("kmsMasterKeyId"):
        report("SNS topics must be encrypted with a KMS key (kmsMasterKeyId).", None)
    elif args.resource_type == SQS_QUEUE and not (props.get("kmsMasterKeyId") or props.get("sqsManagedSseEnabled")):
        report("SQS queues must be encrypted (kmsMasterKeyId or sqsManagedSseEnabled).", None)


storage_encryption = ResourceValidationPolicy(
    name="storage-encryption",
    description="RDS, ElastiCache (at rest and in transit), SNS and SQS store data encrypted.",
    enforcement_level=MANDATORY,
    validate=_storage_encryption,
)


# --- nothing of the data tier is publicly reachable ------------------------------------------


def _data_tier_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type in (RDS_INSTANCE, RDS_CLUSTER) and props.get("publiclyAccessible") is True:
        report("Databases must not be publicly accessible.", None)
    elif args.resource_type in S3_BUCKET_ACL and str(props.get("acl", "")).startswith(("public-", "authenticated")):
        report("S3 buckets must not grant public ACLs.", None)
    elif args.resource_type == S3_BUCKET_POLICY:
        for statement in statements(parse_document(props.get("policy"))):
            principal = statement.get("Principal")
            public = principal == "*" or (isinstance(principal, dict) and "*" in to_list(principal.get("AWS")))
            if statement.get("Effect") == "Allow" and public and not statement.get("Condition"):
                report("Bucket policies must not allow anonymous access.", None)


data_tier_not_public = ResourceValidationPolicy(
    name="data-tier-not-public",
    description="Databases are not publicly accessible; buckets grant no public ACL or anonymous access.",
    enforcement_level=MANDATORY,
    validate=_data_tier_not_public,
)


# --- TLS ---------------------------------------------------------------------------------------


def _tls_minimums(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type in LB_LISTENER:
        protocol = props.get("protocol")
        if protocol == "HTTPS" and props.get("sslPolicy") not in ALB_TLS12_POLICIES:
            report(f"HTTPS listeners need a TLS 1.2+ policy, not {props.get('sslPolicy')!r}.", None)
        elif protocol == "HTTP":
            for action in to_list(props.get("defaultActions")):
                redirect = (action or {}).get("redirect") or {}
                if action.get("type") != "redirect" or redirect.get("protocol") != "HTTPS":
                    report("Plain-HTTP listeners may only redirect to HTTPS.", None)
    elif args.resource_type == CLOUDFRONT:
        certificate = props.get("viewerCertificate") or {}
        if certificate.get("cloudfrontDefaultCertificate") or (
            certificate.get("minimumProtocolVersion") not in CLOUDFRONT_TLS12_MINIMUMS
        ):
            report("CloudFront needs its own certificate with a TLSv1.2_2021-or-newer minimum.", None)
        behaviours = [props.get("defaultCacheBehavior") or {}, *to_list(props.get("orderedCacheBehaviors"))]
        if any(b.get("viewerProtocolPolicy") == "allow-all" for b in behaviours if isinstance(b, dict)):
            report("CloudFront behaviours must redirect to or require HTTPS.", None)
        for origin in to_list(props.get("origins")):
            custom = (origin or {}).get("customOriginConfig")
            if custom and (
                custom.get("originProtocolPolicy") != "https-only"
                or set(to_list(custom.get("originSslProtocols"))) - {"TLSv1.2"}
            ):
                report(f"Origin {origin.get('originId')} must be reached over TLS 1.2 only.", None)


tls_minimums = ResourceValidationPolicy(
    name="tls-minimums",
    description="ALB listeners and CloudFront accept nothing below TLS 1.2; plain HTTP only redirects.",
    enforcement_level=MANDATORY,
    validate=_tls_minimums,
)

# --- production database -----------------------------------------------------------------------


def _prod_database_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type != RDS_INSTANCE or props.get("replicateSourceDb") or not is_production(props):
        return
    if props.get("deletionProtection") is not True:
        report("The production database needs deletion protection.", None)
    if to_int(props.get("backupRetentionPeriod"), 0) < MIN_PROD_BACKUP_DAYS:
        report(f"The production database must keep backups for at least {MIN_PROD_BACKUP_DAYS} days.", None)
    if props.get("skipFinalSnapshot") is not False:
        report("The production database must take a final snapshot (skipFinalSnapshot: false).", None)


prod_database_protection = ResourceValidationPolicy(
    name="prod-database-protection",
    description="The production database has deletion protection, >= 7-day backups and a final snapshot.",
    enforcement_level=MANDATORY,
    validate=_prod_database_protection,
)

# --- logs and images ---------------------------------------------------------------------------


def _log_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == LOG_GROUP and to_int(args.props.get("retentionInDays"), 0) <= 0:
        report("Log groups must set retentionInDays (CloudWatch keeps logs forever otherwise).", None)


log_retention = ResourceValidationPolicy(
    name="log-retention",
    description="Every CloudWatch log group has a retention period.",
    enforcement_level=MANDATORY,
    validate=_log_retention,
)


def mutable_tag_exclusions(props: Mapping[str, Any]) -> list[str]:
    """The exclusion filters of a repository, as `<filterType>:<filter>`."""
    return [
        f"{entry.get('filterType')}:{entry.get('filter')}" if isinstance(entry, dict) else repr(entry)
        for entry in to_list(props.get("imageTagMutabilityExclusionFilters"))
    ]


def _ecr_scan_immutable(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ECR_REPOSITORY:
        return
    props = args.props
    if not (props.get("imageScanningConfiguration") or {}).get("scanOnPush"):
        report("ECR repositories must scan images on push.", None)
    mutability = props.get("imageTagMutability")
    if mutability == "IMMUTABLE_WITH_EXCLUSION":
        # Only `latest` may move (the deploy workflow points it at each release; nothing
        # deploys it). A wildcard or any other tag would let a release tag be overwritten.
        exclusions = mutable_tag_exclusions(props)
        if set(exclusions) != {f"WILDCARD:{ECR_MUTABLE_TAG}"}:
            report(
                f"ECR repositories may exempt only the {ECR_MUTABLE_TAG!r} tag from immutability; "
                f"found exclusion filters {exclusions}.",
                None,
            )
    elif mutability != "IMMUTABLE":
        report("ECR repositories must use immutable tags.", None)


ecr_scan_immutable = ResourceValidationPolicy(
    name="ecr-scan-on-push-immutable-tags",
    description="ECR repositories scan on push and refuse to overwrite tags (only `latest` may move).",
    enforcement_level=MANDATORY,
    validate=_ecr_scan_immutable,
)

# --- IAM ----------------------------------------------------------------------------------------


def _no_wildcard_iam_actions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    documents: list[dict[str, Any]] = []
    if args.resource_type in (IAM_ROLE_POLICY, IAM_POLICY):
        documents.append(parse_document(props.get("policy")))
    elif args.resource_type == IAM_ROLE:
        documents.extend(
            parse_document(p.get("policy")) for p in to_list(props.get("inlinePolicies")) if isinstance(p, dict)
        )
    elif args.resource_type == IAM_ATTACHMENT and BROAD_MANAGED_POLICY.match(str(props.get("policyArn", ""))):
        report(f"Roles must not carry the broad managed policy {props.get('policyArn')}.", None)
    for document in documents:
        for action in wildcard_actions(document):
            report(f"IAM policies must name their actions; found {action!r}.", None)


no_wildcard_iam_actions = ResourceValidationPolicy(
    name="no-wildcard-iam-actions",
    description="No role (task roles included) is granted '*' or 'service:*' actions or a *FullAccess policy.",
    enforcement_level=MANDATORY,
    validate=_no_wildcard_iam_actions,
)

# --- secrets -------------------------------------------------------------------------------------


def plaintext_secrets(environment: Mapping[str, Any]) -> list[str]:
    """Names of variables that hold a credential in plain text (references by ARN are fine)."""
    leaks = []
    for name, value in environment.items():
        text = "" if value is None else str(value)
        is_reference = text.startswith("arn:") or text == ""
        if (SECRET_ENV_NAME.search(name) and not is_reference) or SECRET_VALUE.search(text):
            leaks.append(name)
    return leaks


def _container_environment(raw: Any) -> list[tuple[str, dict[str, Any]]]:
    containers = raw if isinstance(raw, list) else json.loads(raw) if isinstance(raw, str) and raw else []
    out = []
    for container in containers:
        env = {e.get("name", ""): e.get("value") for e in to_list(container.get("environment")) if isinstance(e, dict)}
        out.append((str(container.get("name", "?")), env))
    return out


def _no_plaintext_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == TASK_DEFINITION:
        for container, env in _container_environment(args.props.get("containerDefinitions")):
            for name in plaintext_secrets(env):
                report(f"Container {container}: {name} must come from `secrets` (valueFrom), not `environment`.", None)
    elif args.resource_type == LAMBDA:
        env = ((args.props.get("environment") or {}).get("variables")) or {}
        for name in plaintext_secrets(env):
            report(f"Lambda variable {name} must hold a secret's ARN, not the secret.", None)


no_plaintext_secrets = ResourceValidationPolicy(
    name="no-plaintext-secrets-in-environment",
    description="Task definitions and functions take credentials from Secrets Manager, never plain environment.",
    enforcement_level=MANDATORY,
    validate=_no_plaintext_secrets,
)

RESOURCE_POLICIES: tuple[ResourceValidationPolicy, ...] = (
    storage_encryption,
    data_tier_not_public,
    tls_minimums,
    prod_database_protection,
    log_retention,
    ecr_scan_immutable,
    no_wildcard_iam_actions,
    no_plaintext_secrets,
    github_oidc_trust_pinned,
    cloudfront_behind_waf,
)
ALL_POLICIES = (*RESOURCE_POLICIES, *STACK_POLICIES)

__all__ = [
    "ALL_POLICIES",
    "RESOURCE_POLICIES",
    "STACK_POLICIES",
    "alarms_never_lost",
    "alb_admits_only_cloudfront",
    "cloudfront_behind_waf",
    "connection_budget",
    "data_tier_isolated",
    "data_tier_not_public",
    "ecr_scan_immutable",
    "github_oidc_trust_pinned",
    "log_retention",
    "no_plaintext_secrets",
    "no_wildcard_iam_actions",
    "open_ingress_only_alb_web",
    "plaintext_secrets",
    "prod_database_protection",
    "s3_buckets_private_and_encrypted",
    "storage_encryption",
    "tls_minimums",
]
