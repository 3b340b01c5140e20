"""Stack configuration: the phase table, overrides, and refusals that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sage_infra.config import ConfigError, NatMode, StackConfig, from_values, secrets_from_values
from sage_infra.sizing import PHASES, Phase
from scenarios import REQUIRED, SECRETS

INFRA = Path(__file__).resolve().parent.parent


def config(stack: str = "prod", **overrides: Any) -> StackConfig:
    values = {**REQUIRED, "phase": "mvp", "appDomain": "app.sage.ai", "apiDomain": "api.sage.ai", **overrides}
    return from_values(values, stack)


def test_phase_table_matches_spec_13_1() -> None:
    assert (PHASES[Phase.MVP].api_min_tasks, PHASES[Phase.MVP].api_max_tasks) == (2, 10)
    assert (PHASES[Phase.GROWTH].api_min_tasks, PHASES[Phase.GROWTH].api_max_tasks) == (5, 10)
    assert (PHASES[Phase.SCALE].api_min_tasks, PHASES[Phase.SCALE].api_max_tasks) == (10, 20)
    assert [PHASES[p].db_instance_class for p in Phase] == ["db.t3.micro", "db.t3.small", "db.r6g.large"]
    assert [PHASES[p].db_read_replicas for p in Phase] == [0, 1, 2]
    assert [PHASES[p].db_multi_az for p in Phase] == [False, True, True]
    assert [PHASES[p].cache_node_type for p in Phase] == ["cache.t3.micro", "cache.t3.small", "cache.r6g.large"]
    assert all((PHASES[p].api_cpu, PHASES[p].api_memory) == (512, 1024) for p in Phase)


def test_prod_uses_the_spec_names_and_is_protected() -> None:
    cfg = config()
    assert cfg.prefix == "sage" and cfg.alerts_topic_name == "sage-alerts"
    assert cfg.protect is True and cfg.apply_immediately is False
    assert cfg.nat_mode is NatMode.PER_AZ and cfg.nat_gateway_count == 2


def test_prod_keeps_a_final_snapshot_even_when_protection_is_lifted() -> None:
    assert config(protect="false").final_snapshot is True
    assert config("dev").final_snapshot is False
    assert config("staging", protect="true").final_snapshot is True


def test_other_stacks_are_prefixed_and_disposable() -> None:
    cfg = config("dev", natGateways="single")
    assert cfg.prefix == "sage-dev" and cfg.alerts_topic_name == "sage-alerts-dev"
    assert cfg.protect is False and cfg.log_retention_days == 7
    assert cfg.nat_gateway_count == 1


def test_a_value_overrides_the_phase_default() -> None:
    cfg = config(phase="growth", apiMaxTasks="8", dbInstanceClass="db.t4g.small")
    assert cfg.sizing.api_max_tasks == 8 and cfg.sizing.db_instance_class == "db.t4g.small"
    assert cfg.sizing.api_min_tasks == 5, "the rest of the row stays"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"phase": "huge"}, "sage-infra:phase must be one of mvp, growth, scale"),
        ({"phase": None}, "sage-infra:phase is required"),
        ({"imageTag": "latest"}, "sage-infra:imageTag must be an immutable image tag"),
        ({"imageTag": None}, "sage-infra:imageTag is required"),
        ({"apiCpu": "512", "apiMemory": "512"}, "is not a Fargate size"),
        ({"apiMinTasks": "6", "apiMaxTasks": "5"}, "must not exceed apiMaxTasks"),
        ({"apiMaxTasks": "ten"}, "sage-infra:apiMaxTasks must be an integer"),
        ({"dbInstanceClass": "db.x9.huge"}, "unknown to the connection budget"),
        ({"cdnCertificateArn": REQUIRED["albCertificateArn"]}, "must be a certificate in us-east-1"),
        ({"albCertificateArn": "not-an-arn"}, "must be an ACM certificate ARN"),
        ({"apiDomain": "app.sage.ai"}, "apiDomain must differ from appDomain"),
        ({"appDomain": "not a host"}, "must be a DNS name"),
        ({"logRetentionDays": "10"}, "not a CloudWatch Logs retention value"),
        ({"natGateways": "none"}, "natGateways must be one of"),
        ({"deploymentMaximumPercent": "100", "deploymentMinimumHealthyPercent": "100"}, "cannot both be 100"),
        ({"backupSchedule": "daily"}, "backupSchedule must be an EventBridge"),
        ({"verifyBackupSchedule": "weekly"}, "verifyBackupSchedule must be an EventBridge"),
        ({"verifyBackupSchedule": "cron(0 2 * * ? *)"}, "verifyBackupSchedule must differ from backupSchedule"),
        ({"verifyBackupSchedule": "cron(30 2 ? * SUN *)"}, "must start at least 60 minutes away from backupSchedule"),
        (
            {"backupSchedule": "cron(45 23 * * ? *)", "verifyBackupSchedule": "cron(15 0 ? * MON *)"},
            "must start at least 60 minutes away",
        ),
        ({"protect": "maybe"}, "sage-infra:protect must be true or false"),
        ({"vapidPublicKey": None}, "sage-infra:vapidPublicKey is required while webPushEnabled is true"),
        ({"vapidPublicKey": "not-a-key"}, "sage-infra:vapidPublicKey is required while webPushEnabled"),
        ({"vapidSubject": "alerts@sage.ai"}, "sage-infra:vapidSubject must be a mailto: or https: URL"),
        ({"smtpFrom": "Sage"}, "sage-infra:smtpFrom must be an address"),
        ({"smtpPort": "0"}, "sage-infra:smtpPort must be between 1 and 65535"),
        ({"publicUrl": "http://app.sage.ai"}, "sage-infra:publicUrl must be an https:// URL"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        config(**overrides)


def test_backup_is_verified_weekly_hours_after_the_daily_backup() -> None:
    cfg = config()
    assert (cfg.backup_schedule, cfg.verify_backup_schedule) == ("cron(0 2 * * ? *)", "cron(0 4 ? * SUN *)")
    assert config(verifyBackupSchedule="cron(0 5 ? * WED *)").verify_backup_schedule == "cron(0 5 ? * WED *)"
    assert config(backupSchedule="rate(12 hours)").backup_schedule == "rate(12 hours)"


def test_valid_secrets_are_accepted_and_never_printed() -> None:
    values = secrets_from_values(SECRETS)
    assert values.jwt_secret == SECRETS["jwtSecret"]
    assert values.sentry_dsn is None
    assert all(v not in repr(values) for v in SECRETS.values())


def test_web_push_can_be_turned_off_and_then_needs_no_vapid_keys() -> None:
    cfg = config(webPushEnabled="false", vapidPublicKey=None)
    env = cfg.notification_environment()
    assert env["SAGE_WEB_PUSH_ENABLED"] == "false" and "SAGE_VAPID_PUBLIC_KEY" not in env
    without = {k: v for k, v in SECRETS.items() if k != "vapidPrivateKey"}
    assert secrets_from_values(without, web_push=False).vapid_private_key is None
    with pytest.raises(ConfigError, match="sage-infra:vapidPrivateKey is required"):
        secrets_from_values(without)


def test_email_settings_default_to_ses_in_the_stacks_region() -> None:
    eu_cert = REQUIRED["albCertificateArn"].replace("us-west-2", "eu-west-1")
    values = {**REQUIRED, "phase": "mvp", "appDomain": "app.sage.ai", "apiDomain": "api.sage.ai"}
    cfg = from_values({**values, "albCertificateArn": eu_cert}, "prod", "eu-west-1")
    assert (cfg.smtp_host, cfg.smtp_port, cfg.public_url) == (
        "email-smtp.eu-west-1.amazonaws.com",
        587,
        "https://app.sage.ai",
    )
    assert config(smtpHost="smtp.example.com", smtpPort="465").notification_environment()["SAGE_SMTP_PORT"] == "465"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("smtpUsername", "", "smtpUsername is required"),
        ("smtpPassword", "", "smtpPassword is required"),
        ("vapidPrivateKey", "", "vapidPrivateKey is required"),
        ("vapidPrivateKey", "too-short-key", "vapidPrivateKey must be the base64url raw private key"),
        ("jwtSecret", "tiny-jwt-Qx7", "at least 32 characters"),
        ("jwtSecret", "change-me-change-me-change-me-change-me", "is a placeholder"),
        ("discordWebhookErrors", "https://example.com/hook", "must be a Discord webhook URL"),
        ("valkeyAuthToken", "too-short", "valkeyAuthToken must be 16-128"),
        ("valkeyAuthToken", "has/a/slash/in/it/0123456", "valkeyAuthToken must be 16-128"),
        ("dbMasterPassword", "with space in it", "dbMasterPassword must be 8-128"),
        ("dbMasterPassword", "at@sign-password", "dbMasterPassword must be 8-128"),
        ("anthropicApiKey", "", "anthropicApiKey is required"),
    ],
)
def test_bad_secrets_are_refused_without_echoing_them(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        secrets_from_values({**SECRETS, key: value})
    assert message in str(caught.value)
    assert not value or value not in str(caught.value)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_are_valid_once_account_values_are_set(stack: str) -> None:
    data = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert data["aws:region"] == "us-west-2"
    values = {k.removeprefix("sage-infra:"): v for k, v in data.items() if k.startswith("sage-infra:")}
    cfg = from_values({**values, **REQUIRED}, stack)
    assert cfg.phase is Phase.MVP
    assert cfg.nat_mode is (NatMode.SINGLE if stack == "dev" else NatMode.PER_AZ)


def test_project_file_names_the_python_program() -> None:
    project = yaml.safe_load((INFRA / "Pulumi.yaml").read_text())
    assert project["name"] == "sage-infra"
    assert project["runtime"]["name"] == "python"


def test_prod_requires_an_alarm_email_that_does_not_depend_on_discord() -> None:
    with pytest.raises(ConfigError, match="sage-infra:alarmEmails is required in prod"):
        config(alarmEmails=None)
    assert config("dev", alarmEmails=None).alarm_emails == ()
    assert config(alarmEmails="a@sage.ai, b@sage.ai").alarm_emails == ("a@sage.ai", "b@sage.ai")


def test_an_alarm_email_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(ConfigError, match="alarmEmails: 'oncall' is not an e-mail address"):
        config(alarmEmails="oncall")
