"""The scenarios the infra tests run the Pulumi program with (config and secret values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HARNESS = Path(__file__).resolve().with_name("pulumi_harness.py")

ALB_CERT = "arn:aws:acm:us-west-2:123456789012:certificate/11111111-2222-3333-4444-555555555555"
CDN_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/66666666-7777-8888-9999-000000000000"
IMAGE_TAG = "3f9c2ab"
# Distinct markers so a test can prove a secret never leaks into a plain property.
SECRETS = {
    "anthropicApiKey": "sk-ant-api03-ANTHROPIC-SENTINEL",
    "jwtSecret": "JWT-SENTINEL-0123456789abcdef0123456789abcdef",
    "discordWebhookErrors": "https://discord.com/api/webhooks/111/ERRORS-SENTINEL",
    "discordWebhookPerformance": "https://discord.com/api/webhooks/222/PERFORMANCE-SENTINEL",
    "discordWebhookBusiness": "https://discord.com/api/webhooks/333/BUSINESS-SENTINEL",
    "valkeyAuthToken": "VALKEY-SENTINEL-token#01234567",
    "dbMasterPassword": "DB-SENTINEL-pass%word:1",
    "dbOwnerPassword": "OWNER-SENTINEL-pass%word:2",
    "dbAppPassword": "APP-SENTINEL-pass%word:3",
    "dbReadonlyPassword": "READONLY-SENTINEL-pass%word:4",
    "originVerifySecret": "ORIGIN-SENTINEL-0123456789abcdef0123456789",
    "smtpUsername": "SMTPUSER-SENTINEL-0123",
    "smtpPassword": "SMTP-SENTINEL-password-0123",
    "vapidPrivateKey": "VAPID-SENTINEL-0123456789abcdefghijklmnopqr",
}
ALARM_EMAILS = "oncall@sage.example, ops@sage.example"
GITHUB_REPOSITORY = "sage-ai/sage"
# The dev stack shares the account's GitHub OIDC provider, which prod's stack created.
GITHUB_PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
VAPID_PUBLIC_KEY = "B" + "Ab0_-" * 17 + "x"  # 87 base64url characters, as a P-256 point encodes
REQUIRED = {
    "imageTag": IMAGE_TAG,
    "albCertificateArn": ALB_CERT,
    "cdnCertificateArn": CDN_CERT,
    "alarmEmails": ALARM_EMAILS,
    "githubRepository": GITHUB_REPOSITORY,
    "vapidPublicKey": VAPID_PUBLIC_KEY,
}


def scenario(
    stack: str, *, config: dict[str, Any] | None = None, secrets: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "stack": stack,
        "stack_file": f"Pulumi.{stack}.yaml",
        "config": {**REQUIRED, **(config or {})},
        "secrets": SECRETS if secrets is None else secrets,
    }


def scenarios() -> dict[str, dict[str, Any]]:
    return {
        "prod-mvp": scenario("prod"),
        "prod-growth": scenario("prod", config={"phase": "growth"}),
        "prod-scale": scenario("prod", config={"phase": "scale"}),
        "prod-lean": scenario("prod", config={"profile": "lean"}),
        "dev": scenario(
            "dev",
            config={
                "hostedZoneId": "Z0123456789ABCDEFGHIJ",
                "githubOidcProviderArn": GITHUB_PROVIDER_ARN,
                "wwwDomain": "www.dev.sage.ai",
            },
            secrets={**SECRETS, "sentryDsn": "https://SENTRY-SENTINEL@o1.ingest.sentry.io/2"},
        ),
        # The spec's incident, in configuration form: more API tasks than db.t3.micro can serve.
        "oversized": scenario("prod", config={"apiMaxTasks": "20"}),
        # No stand-in router: a path without the handler stops the program.
        "router-missing": scenario("prod", config={"alarmRouterPath": "/nonexistent/alarm_router"}),
        "missing-secret": scenario("prod", secrets={k: v for k, v in SECRETS.items() if k != "jwtSecret"}),
    }
