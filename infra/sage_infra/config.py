"""Typed stack configuration: the phase's sizing plus per-stack overrides, validated.

`from_values` is pure (tests and the cost tool build configurations without Pulumi);
`load` reads the Pulumi stack configuration. Every mistake an operator can make in
`Pulumi.<stack>.yaml` becomes one ConfigError naming the key, before any resource exists.
Secret values are validated here and never appear in a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sage_infra.budget import (
    PG_TOOL_CONNECTIONS,
    RDS_INSTANCE_MEMORY_GIB,
    RELEASE,
    SCHEDULED_MAINTENANCE,
    Workload,
)
from sage_infra.constants import (
    APP_DB_MAX_OVERFLOW,
    APP_DB_POOL_SIZE,
    APP_WORKERS,
    AZ_COUNT,
    BACKUP_SCHEDULE,
    CACHE_NODES,
    LOG_RETENTION_CHOICES,
    VERIFY_BACKUP_SCHEDULE,
)
from sage_infra.sizing import (
    FARGATE_MEMORY,
    INGESTOR_SIZE,
    LEAN_CACHE_NODES,
    LEAN_MVP,
    OPS_SIZE,
    PHASES,
    Phase,
    PhaseSizing,
)

PROJECT = "sage-infra"
INFRA_DIR = Path(__file__).resolve().parent.parent

PRICE_CLASSES = frozenset({"PriceClass_100", "PriceClass_200", "PriceClass_All"})
_PLACEHOLDER_VALUES = frozenset({"change-me", "changeme", "change_me", "placeholder", "todo", "secret", "password"})
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder")


class ConfigError(ValueError):
    """A stack configuration the program refuses; the message names the key, never a secret."""


class NatMode(StrEnum):
    PER_AZ = "per-az"
    SINGLE = "single"
    INSTANCE = "instance"  # one NAT instance (fck-nat, t4g.nano) instead of NAT gateways


class Profile(StrEnum):
    STANDARD = "standard"
    LEAN = "lean"  # the MVP within the spec's $115/month (sizing.LEAN_MVP)


@dataclass(frozen=True)
class StackConfig:
    stack: str
    environment: str
    phase: Phase
    sizing: PhaseSizing
    nat_mode: NatMode
    image_tag: str
    app_domain: str
    api_domain: str
    alb_certificate_arn: str
    cdn_certificate_arn: str
    hosted_zone_id: str | None = None
    db_pool_size: int = APP_DB_POOL_SIZE
    db_max_overflow: int = APP_DB_MAX_OVERFLOW
    workers: int = APP_WORKERS
    protect: bool = False
    apply_immediately: bool = True
    performance_insights: bool = True
    log_retention_days: int = 30
    backup_schedule: str = BACKUP_SCHEDULE
    verify_backup_schedule: str = VERIFY_BACKUP_SCHEDULE
    slow_query_ms: int = 1000
    # Browser -> CloudFront -> ALB -> app: CloudFront appends the viewer's address to
    # X-Forwarded-For and the ALB appends CloudFront's, so the client is the second from the end.
    trusted_proxy_hops: int = 2
    www_domain: str | None = None
    profile: Profile = Profile.STANDARD
    cache_nodes: int = CACHE_NODES
    cpu_architecture: str = "X86_64"
    container_insights: bool = True
    flow_log_traffic: str = "ALL"
    # The second region the backups are copied to (dr.py).
    dr_region: str = "us-east-2"
    cloudfront_price_class: str = "PriceClass_200"
    metrics_environment: str = "production"
    alarm_router_path: Path = field(default_factory=lambda: INFRA_DIR / "alarm_router")
    # Where alarms about the alarm path itself (router errors, throttles, dead letters) go by
    # e-mail, independent of the Lambda and Discord. Required in prod.
    alarm_emails: tuple[str, ...] = ()
    # GitHub Actions OIDC (github_oidc.py): owner/name of the repository whose workflows may
    # assume the deploy, infra and preview roles; unset: no GitHub access is declared.
    github_repository: str | None = None
    github_oidc_provider_arn: str | None = None
    pulumi_secrets_key_arn: str | None = None
    region: str = "us-west-2"
    # Alerts that reach the user (the app's SAGE_SMTP_* / SAGE_VAPID_* / SAGE_PUBLIC_URL). The
    # SMTP credentials (an SES SMTP username is an access key id) and the VAPID private key are
    # secrets (SecretValues); these are plain.
    smtp_host: str = ""  # default: SES's SMTP endpoint in the stack's region
    smtp_port: int = 587
    smtp_from: str = ""  # default: Sage <alerts@appDomain>
    web_push_enabled: bool = True
    vapid_public_key: str = ""  # required while web push is on
    vapid_subject: str = ""  # default: mailto:alerts@appDomain
    public_url: str = ""  # default: https://appDomain (links in emails)

    @property
    def prefix(self) -> str:
        """Physical-name prefix: the spec's names in prod (sage-cluster, sage-backend, ...)."""
        return "sage" if self.environment == "prod" else f"sage-{self.environment}"

    @property
    def alerts_topic_name(self) -> str:
        return "sage-alerts" if self.environment == "prod" else f"sage-alerts-{self.environment}"

    @property
    def final_snapshot(self) -> bool:
        """Prod always leaves a final snapshot, even once protection is lifted to destroy it."""
        return self.protect or self.environment == "prod"

    @property
    def nat_gateway_count(self) -> int:
        if self.nat_mode is NatMode.INSTANCE:
            return 0
        return AZ_COUNT if self.nat_mode is NatMode.PER_AZ else 1

    def notification_environment(self) -> dict[str, str]:
        """The API's plain settings for email and Web Push (the app's names)."""
        env = {
            "SAGE_PUBLIC_URL": self.public_url,
            "SAGE_SMTP_HOST": self.smtp_host,
            "SAGE_SMTP_PORT": str(self.smtp_port),
            "SAGE_SMTP_FROM": self.smtp_from,
            "SAGE_WEB_PUSH_ENABLED": "true" if self.web_push_enabled else "false",
        }
        if self.web_push_enabled:
            env |= {"SAGE_VAPID_PUBLIC_KEY": self.vapid_public_key, "SAGE_VAPID_SUBJECT": self.vapid_subject}
        return env

    def tags(self, name: str | None = None) -> dict[str, str]:
        tags = {"Project": "sage", "Environment": self.environment, "ManagedBy": "pulumi", "Phase": self.phase.value}
        if name:
            tags["Name"] = name
        return tags

    def workloads(self) -> list[Workload]:
        """Every process that opens PostgreSQL connections, at its worst case."""
        return [
            Workload(
                "api",
                self.sizing.api_max_tasks,
                self.workers,
                self.db_pool_size,
                self.db_max_overflow,
                self.sizing.deployment_maximum_percent,
            ),
            # One ingestor, replaced stop-then-start (deployment maximum 100 %).
            Workload("ingestor", 1, 1, INGESTOR_SIZE.db_pool_size, INGESTOR_SIZE.db_max_overflow),
            # `sage db migrate` backs up first: its pg_dump is a connection too.
            Workload(
                "migration", 1, 1, OPS_SIZE.db_pool_size, OPS_SIZE.db_max_overflow, 100, PG_TOOL_CONNECTIONS, RELEASE
            ),
            # Creates the database roles before a migration; never beside one.
            Workload("bootstrap-roles", 1, 1, OPS_SIZE.db_pool_size, OPS_SIZE.db_max_overflow, 100, 0, RELEASE),
            # The daily backup and the weekly verification are scheduled hours apart.
            Workload(
                "backup",
                1,
                1,
                OPS_SIZE.db_pool_size,
                OPS_SIZE.db_max_overflow,
                100,
                PG_TOOL_CONNECTIONS,
                SCHEDULED_MAINTENANCE,
            ),
            Workload(
                "verify-backup",
                1,
                1,
                OPS_SIZE.db_pool_size,
                OPS_SIZE.db_max_overflow,
                100,
                PG_TOOL_CONNECTIONS,
                SCHEDULED_MAINTENANCE,
            ),
        ]


@dataclass(frozen=True)
class SecretValues:
    """Secret configuration, validated; only ever handed to Pulumi as secret Outputs."""

    anthropic_api_key: str
    jwt_secret: str
    discord_webhook_errors: str
    discord_webhook_performance: str
    discord_webhook_business: str
    valkey_auth_token: str
    db_master_password: str
    db_owner_password: str = ""
    db_app_password: str = ""
    db_readonly_password: str = ""
    origin_verify_secret: str = ""
    smtp_username: str = ""
    smtp_password: str = ""
    vapid_private_key: str | None = None  # None: web push is off (webPushEnabled false)
    sentry_dsn: str | None = None

    def __repr__(self) -> str:
        return "SecretValues(<redacted>)"


SECRET_KEYS = (
    "anthropicApiKey",
    "jwtSecret",
    "discordWebhookErrors",
    "discordWebhookPerformance",
    "discordWebhookBusiness",
    "valkeyAuthToken",
    "dbMasterPassword",
    "dbOwnerPassword",
    "dbAppPassword",
    "dbReadonlyPassword",
    "originVerifySecret",
    "smtpUsername",
    "smtpPassword",
    "vapidPrivateKey",
    "sentryDsn",
)
PLAIN_KEYS = (
    "phase",
    "environment",
    "natGateways",
    "imageTag",
    "appDomain",
    "apiDomain",
    "albCertificateArn",
    "cdnCertificateArn",
    "hostedZoneId",
    "apiMinTasks",
    "apiMaxTasks",
    "apiCpu",
    "apiMemory",
    "dbInstanceClass",
    "dbReadReplicas",
    "dbMultiAz",
    "cacheNodeType",
    "deploymentMaximumPercent",
    "deploymentMinimumHealthyPercent",
    "dbPoolSize",
    "dbMaxOverflow",
    "workers",
    "protect",
    "applyImmediately",
    "performanceInsights",
    "logRetentionDays",
    "backupSchedule",
    "verifyBackupSchedule",
    "slowQueryMs",
    "trustedProxyHops",
    "cloudfrontPriceClass",
    "metricsEnvironment",
    "alarmRouterPath",
    "alarmEmails",
    "githubRepository",
    "wwwDomain",
    "drRegion",
    "profile",
    "githubOidcProviderArn",
    "pulumiSecretsKeyArn",
    "smtpHost",
    "smtpPort",
    "smtpFrom",
    "webPushEnabled",
    "vapidPublicKey",
    "vapidSubject",
    "publicUrl",
)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate/[0-9a-f-]+$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_EMAIL = re.compile(r"^[^@\s,]+@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
_SENDER = re.compile(r"^([^<>]*<[^@\s<>]+@[^@\s<>]+>|[^@\s<>]+@[^@\s<>]+)$")
# An uncompressed P-256 point, base64url without padding: 65 bytes -> 87 characters, 0x04 -> "B".
_VAPID_PUBLIC = re.compile(r"^B[A-Za-z0-9_-]{86}$")
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{1,15}$")
_WEBHOOK = re.compile(
    r"^https://(discord\.com|discordapp\.com|ptb\.discord\.com|canary\.discord\.com)/api/webhooks/\S+$"
)


def _text(values: Mapping[str, object], key: str, default: str | None = None) -> str | None:
    raw = values.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    return str(raw).strip()


def _required(values: Mapping[str, object], key: str) -> str:
    value = _text(values, key)
    if value is None:
        raise ConfigError(f"sage-infra:{key} is required (pulumi config set {key} ...)")
    return value


def _int(values: Mapping[str, object], key: str, default: int, *, low: int, high: int) -> int:
    raw = _text(values, key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"sage-infra:{key} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"sage-infra:{key} must be between {low} and {high}, not {value}")
    return value


def _bool(values: Mapping[str, object], key: str, default: bool) -> bool:
    raw = _text(values, key)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ConfigError(f"sage-infra:{key} must be true or false, not {raw!r}")


def _choice(values: Mapping[str, object], key: str, default: str, choices: frozenset[str] | set[str]) -> str:
    value = _text(values, key, default) or default
    if value not in choices:
        raise ConfigError(f"sage-infra:{key} must be one of {', '.join(sorted(choices))}, not {value!r}")
    return value


def _certificate(values: Mapping[str, object], key: str, region: str | None) -> str:
    arn = _required(values, key)
    match = _ACM_ARN.match(arn)
    if match is None:
        raise ConfigError(f"sage-infra:{key} must be an ACM certificate ARN, not {arn!r}")
    if region is not None and match.group(1) != region:
        raise ConfigError(f"sage-infra:{key} must be a certificate in {region} (it is in {match.group(1)})")
    return arn


def _hostname(values: Mapping[str, object], key: str) -> str:
    host = _required(values, key).lower()
    if _HOSTNAME.match(host) is None:
        raise ConfigError(f"sage-infra:{key} must be a DNS name such as app.example.com, not {host!r}")
    return host


def _schedule(values: Mapping[str, object], key: str, default: str) -> str:
    schedule = _text(values, key, default) or default
    if not re.match(r"^(cron|rate)\(.+\)$", schedule):
        raise ConfigError(f"sage-infra:{key} must be an EventBridge cron(...) or rate(...), not {schedule!r}")
    return schedule


_FIXED_TIME = re.compile(r"^cron\((\d{1,2}) (\d{1,2}) ")
MIN_MINUTES_BETWEEN_BACKUP_AND_VERIFY = 60


def _check_apart(backup: str, verify: str) -> None:
    """The backup and its verification share one slot of the connection budget: keep them apart."""
    if backup == verify:
        raise ConfigError("sage-infra:verifyBackupSchedule must differ from backupSchedule (they must not overlap)")
    times = [_FIXED_TIME.match(s) for s in (backup, verify)]
    if times[0] is None or times[1] is None:
        return  # rate(...) or wildcard hours: only identical expressions are refused
    minutes = [int(m.group(2)) * 60 + int(m.group(1)) for m in times if m is not None]
    gap = abs(minutes[0] - minutes[1])
    if min(gap, 24 * 60 - gap) < MIN_MINUTES_BETWEEN_BACKUP_AND_VERIFY:
        raise ConfigError(
            "sage-infra:verifyBackupSchedule must start at least "
            f"{MIN_MINUTES_BETWEEN_BACKUP_AND_VERIFY} minutes away from backupSchedule ({verify} vs {backup}): "
            "the two share one slot of the PostgreSQL connection budget"
        )


def from_values(values: Mapping[str, object], stack: str, region: str = "us-west-2") -> StackConfig:
    """Validate the plain (non-secret) configuration of a stack."""
    phase_name = _required(values, "phase")
    try:
        phase = Phase(phase_name)
    except ValueError:
        raise ConfigError(f"sage-infra:phase must be one of mvp, growth, scale, not {phase_name!r}") from None
    profile = Profile(_choice(values, "profile", Profile.STANDARD.value, {m.value for m in Profile}))
    lean = profile is Profile.LEAN
    if lean and phase is not Phase.MVP:
        raise ConfigError("sage-infra:profile lean is a sizing of the mvp phase; use it with phase mvp")
    base = LEAN_MVP if lean else PHASES[phase]

    environment = _text(values, "environment", stack) or stack
    if _ENVIRONMENT.match(environment) is None:
        raise ConfigError(f"sage-infra:environment must be lowercase letters, digits and '-', not {environment!r}")

    instance_class = _text(values, "dbInstanceClass", base.db_instance_class) or base.db_instance_class
    if instance_class not in RDS_INSTANCE_MEMORY_GIB:
        raise ConfigError(
            f"sage-infra:dbInstanceClass {instance_class!r} is unknown to the connection budget "
            "(add it to sage_infra/budget.py)"
        )
    api_cpu = _int(values, "apiCpu", base.api_cpu, low=256, high=4096)
    api_memory = _int(values, "apiMemory", base.api_memory, low=512, high=30720)
    if api_memory not in FARGATE_MEMORY.get(api_cpu, ()):
        raise ConfigError(f"sage-infra:apiCpu {api_cpu} / apiMemory {api_memory} is not a Fargate size")
    api_min = _int(values, "apiMinTasks", base.api_min_tasks, low=1, high=200)
    api_max = _int(values, "apiMaxTasks", base.api_max_tasks, low=1, high=200)
    if api_min > api_max:
        raise ConfigError(f"sage-infra:apiMinTasks ({api_min}) must not exceed apiMaxTasks ({api_max})")
    max_percent = _int(values, "deploymentMaximumPercent", base.deployment_maximum_percent, low=100, high=200)
    min_healthy = _int(
        values, "deploymentMinimumHealthyPercent", base.deployment_minimum_healthy_percent, low=0, high=100
    )
    if max_percent == 100 and min_healthy == 100:
        raise ConfigError(
            "sage-infra:deploymentMaximumPercent and deploymentMinimumHealthyPercent cannot both be 100 "
            "(ECS could never replace a task)"
        )
    sizing = PhaseSizing(
        mau=base.mau,
        api_min_tasks=api_min,
        api_max_tasks=api_max,
        api_cpu=api_cpu,
        api_memory=api_memory,
        db_instance_class=instance_class,
        db_read_replicas=_int(values, "dbReadReplicas", base.db_read_replicas, low=0, high=5),
        db_multi_az=_bool(values, "dbMultiAz", base.db_multi_az),
        cache_node_type=_text(values, "cacheNodeType", base.cache_node_type) or base.cache_node_type,
        deployment_maximum_percent=max_percent,
        deployment_minimum_healthy_percent=min_healthy,
    )

    image_tag = _required(values, "imageTag")
    if _IMAGE_TAG.match(image_tag) is None or image_tag == "latest":
        raise ConfigError(
            f"sage-infra:imageTag must be an immutable image tag (e.g. the git SHA CI pushed), not {image_tag!r}"
        )
    app_domain = _hostname(values, "appDomain")
    api_domain = _hostname(values, "apiDomain")
    if app_domain == api_domain:
        raise ConfigError("sage-infra:apiDomain must differ from appDomain (CloudFront forwards /api/* to it)")

    protect = _bool(values, "protect", environment == "prod")
    log_retention = _int(values, "logRetentionDays", 30 if protect else 7, low=1, high=3653)
    if log_retention not in LOG_RETENTION_CHOICES:
        raise ConfigError(f"sage-infra:logRetentionDays {log_retention} is not a CloudWatch Logs retention value")
    schedule = _schedule(values, "backupSchedule", BACKUP_SCHEDULE)
    verify_schedule = _schedule(values, "verifyBackupSchedule", VERIFY_BACKUP_SCHEDULE)
    _check_apart(schedule, verify_schedule)
    hosted_zone = _text(values, "hostedZoneId")
    if hosted_zone is not None and re.match(r"^Z[A-Z0-9]{1,31}$", hosted_zone) is None:
        raise ConfigError(f"sage-infra:hostedZoneId must be a Route 53 zone id such as Z123ABC, not {hosted_zone!r}")
    emails = tuple(e.strip() for e in (_text(values, "alarmEmails") or "").split(",") if e.strip())
    for email in emails:
        if _EMAIL.match(email) is None:
            raise ConfigError(f"sage-infra:alarmEmails: {email!r} is not an e-mail address")
    if environment == "prod" and not emails:
        raise ConfigError(
            "sage-infra:alarmEmails is required in prod (comma-separated): where alarms about the alarm "
            "router and its dead-letter queue go without Discord"
        )
    dr_region = _text(values, "drRegion", "us-east-2") or "us-east-2"
    if re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", dr_region) is None:
        raise ConfigError(f"sage-infra:drRegion must be an AWS region such as us-east-2, not {dr_region!r}")
    if dr_region == region:
        raise ConfigError(f"sage-infra:drRegion must differ from the stack's region ({region})")
    www_domain = _hostname(values, "wwwDomain") if _text(values, "wwwDomain") else None
    if www_domain is not None and www_domain in (app_domain, api_domain):
        raise ConfigError("sage-infra:wwwDomain must differ from appDomain and apiDomain")
    github_repository = _text(values, "githubRepository")
    if (
        github_repository is not None
        and re.match(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$", github_repository) is None
    ):
        raise ConfigError(f"sage-infra:githubRepository must be owner/name, not {github_repository!r}")
    provider_arn = _text(values, "githubOidcProviderArn")
    if (
        provider_arn is not None
        and re.match(r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$", provider_arn)
        is None
    ):
        raise ConfigError("sage-infra:githubOidcProviderArn must be the ARN of GitHub's OIDC provider in IAM")
    secrets_key = _text(values, "pulumiSecretsKeyArn")
    if (
        secrets_key is not None
        and re.match(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+$", secrets_key) is None
    ):
        raise ConfigError("sage-infra:pulumiSecretsKeyArn must be a KMS key ARN")
    smtp_from = _text(values, "smtpFrom", f"Sage <alerts@{app_domain}>") or ""
    if _SENDER.match(smtp_from) is None:
        raise ConfigError(f"sage-infra:smtpFrom must be an address or 'Name <address>', not {smtp_from!r}")
    smtp_host = _text(values, "smtpHost", f"email-smtp.{region}.amazonaws.com") or ""
    if _HOSTNAME.match(smtp_host.lower()) is None:
        raise ConfigError(f"sage-infra:smtpHost must be a DNS name, not {smtp_host!r}")
    web_push = _bool(values, "webPushEnabled", True)
    vapid_public = _text(values, "vapidPublicKey") or ""
    if web_push and _VAPID_PUBLIC.match(vapid_public) is None:
        raise ConfigError(
            "sage-infra:vapidPublicKey is required while webPushEnabled is true: the base64url public key"
            " of the VAPID pair (87 characters, starting with B)"
        )
    vapid_subject = _text(values, "vapidSubject", f"mailto:alerts@{app_domain}") or ""
    if not vapid_subject.startswith(("mailto:", "https://")):
        raise ConfigError("sage-infra:vapidSubject must be a mailto: or https: URL (RFC 8292)")
    public_url = _text(values, "publicUrl", f"https://{app_domain}") or ""
    if not public_url.startswith("https://"):
        raise ConfigError("sage-infra:publicUrl must be an https:// URL (the web app's origin, for links in emails)")
    router_path = _text(values, "alarmRouterPath")
    router_dir = Path(router_path) if router_path else INFRA_DIR / "alarm_router"
    if not (router_dir / "handler.py").is_file():
        raise ConfigError(f"sage-infra:alarmRouterPath {router_dir} has no handler.py (the alarm router's code)")

    return StackConfig(
        stack=stack,
        environment=environment,
        phase=phase,
        sizing=sizing,
        nat_mode=NatMode(
            _choice(
                values, "natGateways", (NatMode.INSTANCE if lean else NatMode.PER_AZ).value, {m.value for m in NatMode}
            )
        ),
        profile=profile,
        cache_nodes=LEAN_CACHE_NODES if lean else CACHE_NODES,
        cpu_architecture="ARM64" if lean else "X86_64",
        container_insights=not lean,
        flow_log_traffic="REJECT" if lean else "ALL",
        image_tag=image_tag,
        app_domain=app_domain,
        api_domain=api_domain,
        alb_certificate_arn=_certificate(values, "albCertificateArn", region),
        # CloudFront only accepts certificates from us-east-1.
        cdn_certificate_arn=_certificate(values, "cdnCertificateArn", "us-east-1"),
        hosted_zone_id=hosted_zone,
        db_pool_size=_int(values, "dbPoolSize", APP_DB_POOL_SIZE, low=1, high=100),
        db_max_overflow=_int(values, "dbMaxOverflow", APP_DB_MAX_OVERFLOW, low=0, high=100),
        workers=_int(values, "workers", APP_WORKERS, low=1, high=64),
        protect=protect,
        apply_immediately=_bool(values, "applyImmediately", not protect),
        performance_insights=_bool(values, "performanceInsights", True),
        log_retention_days=log_retention,
        backup_schedule=schedule,
        verify_backup_schedule=verify_schedule,
        slow_query_ms=_int(values, "slowQueryMs", 1000, low=0, high=600_000),
        trusted_proxy_hops=_int(values, "trustedProxyHops", 2, low=0, high=5),
        www_domain=www_domain,
        dr_region=dr_region,
        cloudfront_price_class=_choice(values, "cloudfrontPriceClass", "PriceClass_200", PRICE_CLASSES),
        metrics_environment=_text(values, "metricsEnvironment", "production") or "production",
        alarm_router_path=router_dir,
        alarm_emails=emails,
        github_repository=github_repository,
        github_oidc_provider_arn=provider_arn,
        pulumi_secrets_key_arn=secrets_key,
        region=region,
        smtp_host=smtp_host,
        smtp_port=_int(values, "smtpPort", 587, low=1, high=65535),
        smtp_from=smtp_from,
        web_push_enabled=web_push,
        vapid_public_key=vapid_public,
        vapid_subject=vapid_subject,
        public_url=public_url.rstrip("/"),
    )


def _printable_without(value: str, forbidden: str) -> bool:
    return all(33 <= ord(ch) <= 126 and ch not in forbidden for ch in value)


def secrets_from_values(values: Mapping[str, object], *, web_push: bool = True) -> SecretValues:
    """Validate the secret configuration. Messages name the key only. `web_push`: the stack's
    webPushEnabled (the VAPID private key is needed only then)."""

    def need(key: str) -> str:
        value = _text(values, key)
        if value is None:
            raise ConfigError(f"sage-infra:{key} is required (pulumi config set --secret {key} ...)")
        lowered = value.lower()
        if lowered in _PLACEHOLDER_VALUES or any(marker in lowered for marker in _PLACEHOLDER_MARKERS):
            raise ConfigError(f"sage-infra:{key} is a placeholder; set the real value")
        return value

    jwt = need("jwtSecret")
    if len(jwt) < 32:
        raise ConfigError("sage-infra:jwtSecret must be at least 32 characters (the app refuses shorter ones)")
    webhooks = {
        key: need(key) for key in ("discordWebhookErrors", "discordWebhookPerformance", "discordWebhookBusiness")
    }
    for key, url in webhooks.items():
        if _WEBHOOK.match(url) is None:
            raise ConfigError(f"sage-infra:{key} must be a Discord webhook URL (https://discord.com/api/webhooks/...)")
    token = need("valkeyAuthToken")
    # ElastiCache AUTH tokens: 16-128 printable ASCII characters without space, '"', '/' or '@'.
    if not 16 <= len(token) <= 128 or not _printable_without(token, '"/@'):
        raise ConfigError(
            "sage-infra:valkeyAuthToken must be 16-128 printable ASCII characters without spaces, '\"', '/' or '@'"
        )
    password = need("dbMasterPassword")
    # RDS master passwords: 8-128 printable ASCII characters without space, '"', '/' or '@'.
    if not 8 <= len(password) <= 128 or not _printable_without(password, '"/@'):
        raise ConfigError(
            "sage-infra:dbMasterPassword must be 8-128 printable ASCII characters without spaces, '\"', '/' or '@'"
        )
    roles = {key: need(key) for key in ("dbOwnerPassword", "dbAppPassword", "dbReadonlyPassword")}
    for key, value in roles.items():
        # `sage db bootstrap-roles` takes 16+ printable ASCII characters (sage.ops.roles.check_password).
        if not 16 <= len(value) <= 128 or not _printable_without(value, ""):
            raise ConfigError(f"sage-infra:{key} must be 16-128 printable ASCII characters without spaces")
    if len({password, *roles.values()}) != 1 + len(roles):
        raise ConfigError("sage-infra:dbMasterPassword and the three role passwords must all differ")
    origin_secret = need("originVerifySecret")
    # Sent by CloudFront in a header and matched by the ALB: printable, no spaces, hard to guess.
    if not 32 <= len(origin_secret) <= 128 or not _printable_without(origin_secret, ""):
        raise ConfigError("sage-infra:originVerifySecret must be 32-128 printable ASCII characters without spaces")
    vapid_private = need("vapidPrivateKey") if web_push else None
    # A raw P-256 private key, base64url without padding: 32 bytes -> 43 characters.
    if vapid_private is not None and re.match(r"^[A-Za-z0-9_-]{43}$", vapid_private) is None:
        raise ConfigError("sage-infra:vapidPrivateKey must be the base64url raw private key of the VAPID pair")
    return SecretValues(
        anthropic_api_key=need("anthropicApiKey"),
        jwt_secret=jwt,
        discord_webhook_errors=webhooks["discordWebhookErrors"],
        discord_webhook_performance=webhooks["discordWebhookPerformance"],
        discord_webhook_business=webhooks["discordWebhookBusiness"],
        valkey_auth_token=token,
        db_master_password=password,
        db_owner_password=roles["dbOwnerPassword"],
        db_app_password=roles["dbAppPassword"],
        db_readonly_password=roles["dbReadonlyPassword"],
        origin_verify_secret=origin_secret,
        smtp_username=need("smtpUsername"),
        smtp_password=need("smtpPassword"),
        vapid_private_key=vapid_private,
        sentry_dsn=_text(values, "sentryDsn"),
    )


def load() -> tuple[StackConfig, SecretValues]:
    """Read and validate the current Pulumi stack's configuration."""
    import pulumi
    from pulumi.runtime.config import get_config

    def raw(key: str) -> object:
        return get_config(f"{PROJECT}:{key}")

    region = pulumi.Config("aws").get("region") or "us-west-2"
    plain = {key: raw(key) for key in PLAIN_KEYS}
    secret = {key: raw(key) for key in SECRET_KEYS}
    cfg = from_values(plain, pulumi.get_stack(), region)
    return cfg, secrets_from_values(secret, web_push=cfg.web_push_enabled)
