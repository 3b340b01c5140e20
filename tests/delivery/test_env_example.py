""".env.example names every setting Sage reads, explains each, and holds no real secret."""

from __future__ import annotations

import re

from sage.settings import PLACEHOLDER_SECRETS, Settings, env_name
from tests.delivery.tools import REPO

ENV_EXAMPLE = REPO / ".env.example"
LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
SAGE_NAMES = {env_name(field) for field in Settings.model_fields}
SECRET_NAMES = {env_name(name) for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)}


def entries() -> list[tuple[int, str, str, bool]]:
    """(line number, name, value, commented out) for each variable line."""
    found = []
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), start=1):
        match = LINE.match(line)
        if match:
            found.append((number, match[2], match[3], bool(match[1])))
    return found


def test_every_setting_is_listed():
    listed = {name for _, name, _, _ in entries()}
    missing = sorted(SAGE_NAMES - listed)
    hint = "\n".join(f"# {name}=" for name in missing)
    assert not missing, f"add to .env.example, each with a comment saying what it does:\n{hint}"


def test_it_lists_no_setting_sage_does_not_read():
    unknown = {name for _, name, _, _ in entries() if name.startswith("SAGE_")} - SAGE_NAMES
    assert not unknown


def test_each_variable_is_explained_by_the_comment_above_it():
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for number, name, _, _ in entries():
        above = lines[number - 2].strip()
        explained = above.startswith("#") and not LINE.match(above) and len(above) > 8
        block = LINE.match(above) and not above.startswith("#")  # a run of compose variables under one comment
        assert explained or block, f"line {number}: {name} needs a comment saying what it is"


def test_secrets_are_placeholders_sage_refuses_in_production():
    values = {name: value for _, name, value, _ in entries()}
    for name in SECRET_NAMES | {"POSTGRES_PASSWORD"}:
        assert values[name].strip().lower() in PLACEHOLDER_SECRETS, f"{name} must be a placeholder such as change-me"


def test_listed_defaults_match_the_settings():
    values = {name: value for _, name, value, _ in entries()}
    defaults = Settings()
    for field in Settings.model_fields:
        name = env_name(field)
        if name in SECRET_NAMES or not values.get(name):
            continue  # secrets read change-me; computed defaults are described, not given
        shown = Settings(**{field: values[name]}) if field != "data_dir" else defaults
        assert getattr(shown, field) == getattr(defaults, field), f"{name}={values[name]} is not the default"


def test_sage_settings_are_commented_out_so_a_copied_file_changes_nothing():
    active = [name for _, name, _, commented in entries() if name in SAGE_NAMES and not commented]
    assert not active, f"uncommented Sage settings would override the defaults in every container: {active}"
