"""Infra's copy of the app's contract agrees with the app itself (src/sage).

The Pulumi program does not import `sage` (it runs from infra/ with its own requirements), so
the numbers it needs are written in constants.py and the alert-rule owners in alarms.py. These
tests hold them to the app's Settings and rule catalogue.
"""

from __future__ import annotations

import pytest
from sage_infra import constants
from sage_infra.alarms import (
    ALARMS,
    ALERT_RULES_OFF,
    APP_RULES_KEPT_IN_APP,
    APP_RULES_OWNED_BY_ALARMS,
    ERROR_RATE_KEY,
)
from stack_record import StackRecord, environment

from sage.observability import alerts as app_alerts
from sage.serving import uvicorn_options
from sage.settings import Settings

DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}


@pytest.mark.parametrize(
    ("constant", "setting"),
    [
        ("APP_PORT", "port"),
        ("APP_DB_POOL_SIZE", "db_pool_size"),
        ("APP_DB_MAX_OVERFLOW", "db_max_overflow"),
        ("APP_WORKERS", "workers"),
        ("APP_SSE_KEEPALIVE_SECONDS", "sse_keepalive_seconds"),
        ("DEREGISTRATION_DELAY_SECONDS", "shutdown_grace_seconds"),
    ],
)
def test_infra_constant_matches_the_settings_default(constant: str, setting: str) -> None:
    assert getattr(constants, constant) == DEFAULTS[setting], f"constants.{constant} vs Settings.{setting}"


def test_the_http_keep_alive_infra_sizes_the_alb_around_is_the_apps() -> None:
    assert uvicorn_options(Settings())["timeout_keep_alive"] == constants.APP_HTTP_KEEPALIVE_SECONDS


def test_the_llm_queue_alarm_fires_at_the_apps_queue_cap() -> None:
    (alarm,) = [a for a in ALARMS if a.key == "llm-queue-full"]
    assert alarm.threshold == DEFAULTS["llm_queue_size"]


# --- one owner per alert condition ----------------------------------------------------------------
APP_RULE_KEYS = {rule.key for rule in app_alerts.default_rules(Settings())}


def test_every_app_rule_has_a_decided_owner() -> None:
    owned, kept = set(APP_RULES_OWNED_BY_ALARMS), set(APP_RULES_KEPT_IN_APP)
    assert not owned & kept
    assert owned | kept == APP_RULE_KEYS, "a new app rule: decide who owns it in sage_infra/alarms.py"


def test_each_rule_handed_to_cloudwatch_names_alarms_the_stack_declares() -> None:
    declared = {a.key for a in ALARMS} | {ERROR_RATE_KEY}
    for rule, alarms in APP_RULES_OWNED_BY_ALARMS.items():
        assert alarms and set(alarms) <= declared, rule


def test_the_app_accepts_the_rules_off_list_and_keeps_only_its_own_rules() -> None:
    settings = Settings(alert_rules_off=ALERT_RULES_OFF)
    assert {rule.key for rule in app_alerts.default_rules(settings)} == set(APP_RULES_KEPT_IN_APP)


def test_api_and_ingestor_switch_off_the_rules_cloudwatch_owns(deployable: list[StackRecord]) -> None:
    for stack in deployable:
        for family in ("backend", "ingestor"):
            variables = environment(stack.container(family))
            assert set(variables["SAGE_ALERT_RULES_OFF"].split(",")) == set(APP_RULES_OWNED_BY_ALARMS)


def test_each_alarm_that_owns_an_app_rule_is_declared_in_prod(prod: StackRecord) -> None:
    names = {a["name"] for a in prod.of_type("cloudwatch/metricAlarm")}
    for alarms in APP_RULES_OWNED_BY_ALARMS.values():
        for key in alarms:
            assert any(name.endswith(f"-{key}") or f"-{key}-" in name for name in names), key
