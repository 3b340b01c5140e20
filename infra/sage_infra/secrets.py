"""Secrets Manager entries for the application's credentials (spec 12.2, 12.3).

Values come from `pulumi config set --secret ...`; they travel as secret Outputs (encrypted in
the Pulumi state) and reach containers only as `secrets` (valueFrom ARNs), never as plain
environment variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child


def stored_secret(
    name: str,
    *,
    physical_name: str,
    description: str,
    value: pulumi.Input[str],
    recovery_window_in_days: int,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.secretsmanager.Secret:
    secret = aws.secretsmanager.Secret(
        name,
        name=physical_name,
        description=description,
        recovery_window_in_days=recovery_window_in_days,
        tags=dict(tags),
        opts=child(parent),
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-value",
        secret_id=secret.id,
        secret_string=pulumi.Output.secret(value),
        opts=child(parent),
    )
    return secret


@dataclass(frozen=True)
class AppSecretsArgs:
    prefix: str
    tags: Mapping[str, str]
    recovery_window_in_days: int
    anthropic_api_key: pulumi.Input[str]
    jwt_secret: pulumi.Input[str]
    discord_webhook_errors: pulumi.Input[str]
    discord_webhook_performance: pulumi.Input[str]
    discord_webhook_business: pulumi.Input[str]
    smtp_username: pulumi.Input[str]
    smtp_password: pulumi.Input[str]
    vapid_private_key: pulumi.Input[str] | None = None  # None: web push off
    sentry_dsn: pulumi.Input[str] | None = None


class AppSecrets(pulumi.ComponentResource):
    anthropic_api_key: aws.secretsmanager.Secret
    jwt_secret: aws.secretsmanager.Secret
    discord_webhook_errors: aws.secretsmanager.Secret
    discord_webhook_performance: aws.secretsmanager.Secret
    discord_webhook_business: aws.secretsmanager.Secret
    smtp_username: aws.secretsmanager.Secret
    smtp_password: aws.secretsmanager.Secret
    vapid_private_key: aws.secretsmanager.Secret | None
    sentry_dsn: aws.secretsmanager.Secret | None

    def __init__(self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:AppSecrets", name, None, opts)

        def make(key: str, description: str, value: pulumi.Input[str]) -> aws.secretsmanager.Secret:
            return stored_secret(
                f"{name}-{key}",
                physical_name=f"{args.prefix}/{key}",
                description=description,
                value=value,
                recovery_window_in_days=args.recovery_window_in_days,
                tags=args.tags,
                parent=self,
            )

        self.anthropic_api_key = make("anthropic-api-key", "Anthropic Claude API key", args.anthropic_api_key)
        self.jwt_secret = make("jwt-secret", "Signing key of the app's access and refresh tokens", args.jwt_secret)
        self.discord_webhook_errors = make(
            "discord-webhook-errors", "Discord webhook: #errors", args.discord_webhook_errors
        )
        self.discord_webhook_performance = make(
            "discord-webhook-performance", "Discord webhook: #performance", args.discord_webhook_performance
        )
        self.discord_webhook_business = make(
            "discord-webhook-business", "Discord webhook: #business-metrics", args.discord_webhook_business
        )
        self.smtp_username = make(
            "smtp-username", "SMTP username of the alert emails (an SES SMTP user's access key id)", args.smtp_username
        )
        self.smtp_password = make("smtp-password", "SMTP password of the alert emails (SES SMTP)", args.smtp_password)
        self.vapid_private_key = (
            make("vapid-private-key", "VAPID private key of Web Push", args.vapid_private_key)
            if args.vapid_private_key is not None
            else None
        )
        self.sentry_dsn = (
            make("sentry-dsn", "Sentry DSN of the app", args.sentry_dsn) if args.sentry_dsn is not None else None
        )
        self.register_outputs({})

    @property
    def webhooks(self) -> tuple[aws.secretsmanager.Secret, aws.secretsmanager.Secret, aws.secretsmanager.Secret]:
        return (self.discord_webhook_errors, self.discord_webhook_performance, self.discord_webhook_business)
