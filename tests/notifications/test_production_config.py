"""Production refuses to start with a delivery channel on but its credentials missing."""

from __future__ import annotations

import pytest

from sage.settings import ConfigurationError, Settings
from tests.unit.test_settings import production


@pytest.mark.parametrize(
    ("missing", "variable"),
    [("vapid_private_key", "SAGE_VAPID_PRIVATE_KEY"), ("vapid_public_key", "SAGE_VAPID_PUBLIC_KEY")],
)
def test_web_push_on_in_production_needs_both_vapid_keys(missing: str, variable: str) -> None:
    keys = {"vapid_private_key": "priv", "vapid_public_key": "BPub"}
    with pytest.raises(ConfigurationError, match=variable):
        production(web_push_enabled=True, **{**keys, missing: None}).check_production()
    with pytest.raises(ConfigurationError, match=variable):
        production(web_push_enabled=True, **{**keys, missing: "  "}).check_production()
    production(web_push_enabled=True, **keys).check_production()
    production(web_push_enabled=False).check_production()  # off: no keys needed


def test_email_on_in_production_needs_the_smtp_password() -> None:
    with pytest.raises(ConfigurationError, match="SAGE_SMTP_PASSWORD is required"):
        production(smtp_host="email-smtp.us-west-2.amazonaws.com", smtp_username="AKIA").check_production()
    with pytest.raises(ConfigurationError, match="SAGE_SMTP_PASSWORD"):
        production(smtp_host="smtp.example.com", smtp_password=" ").check_production()
    production(smtp_host="smtp.example.com", smtp_password="real-password").check_production()
    production().check_production()  # no SAGE_SMTP_HOST: email off, nothing needed
    Settings(smtp_host="127.0.0.1").check_production()  # development sends through a local server
