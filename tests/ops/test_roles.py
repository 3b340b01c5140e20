"""`sage db bootstrap-roles` on a real PostgreSQL: the app role reads and writes its tables and
can change nothing else; migrations run as the owner; backups read as the read-only role."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from sage.ops import schema
from sage.ops.common import OpsError
from sage.ops.roles import (
    APP,
    OWNER,
    READONLY,
    RoleNames,
    RolePasswords,
    bootstrap_roles,
    check_password,
    scram_verifier,
)
from tests.ops.conftest import REPO, run_sage

PASSWORDS = RolePasswords(
    owner="owner-Password-0123456789", app="app-Password-0123456789", readonly="ro-Password-01234567"
)


def as_role(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{quote(role)}:{quote(password)}@{host}", parts.path, parts.query, ""))


class Roles:
    def __init__(self, url: str, names: RoleNames) -> None:
        self.url, self.names = url, names

    async def connect(self, which: str) -> asyncpg.Connection:
        role = getattr(self.names, which)
        return await asyncpg.connect(as_role(self.url, role, getattr(PASSWORDS, which)))

    def url_of(self, which: str) -> str:
        return as_role(self.url, getattr(self.names, which), getattr(PASSWORDS, which))


@pytest.fixture
async def make_roles() -> AsyncIterator[Callable[[str], Any]]:
    """bootstrap_roles on a database with role names of this test's own; dropped afterwards."""
    made: list[tuple[str, RoleNames]] = []

    async def make(url: str) -> Roles:
        tag = uuid.uuid4().hex[:8]
        names = RoleNames(owner=f"owner_{tag}", app=f"app_{tag}", readonly=f"ro_{tag}")
        conn = await asyncpg.connect(url)
        try:
            await bootstrap_roles(conn, PASSWORDS, names)
        finally:
            await conn.close()
        made.append((url, names))
        return Roles(url, names)

    yield make
    for url, names in made:
        conn = await asyncpg.connect(url)
        try:
            for role in (names.app, names.readonly, names.owner):
                await conn.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
                await conn.execute(f'DROP OWNED BY "{role}"')
                await conn.execute(f'DROP ROLE "{role}"')
        finally:
            await conn.close()


@pytest.fixture
async def migrated(database_url: str, make_roles: Callable[[str], Any]) -> Roles:
    """A database the master user migrated (as before roles existed), then bootstrapped."""
    roles: Roles = await make_roles(database_url)
    return roles


# --- the app role ------------------------------------------------------------------------------------


async def test_the_app_role_reads_and_writes_its_tables(migrated: Roles) -> None:
    conn = await migrated.connect("app")
    try:
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        user_id = await conn.fetchval(
            "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), $1, 'x') RETURNING id", email
        )
        await conn.execute("UPDATE users SET password_hash = 'y' WHERE id = $1", user_id)
        assert await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id) == "y"
        await conn.execute("DELETE FROM users WHERE id = $1", user_id)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE users",
        "CREATE TABLE intruder (id int)",
        "ALTER TABLE users ADD COLUMN intruder int",
        "TRUNCATE users",
        "CREATE SCHEMA intruder",
        "DROP TABLE alembic_version",
        "CREATE INDEX intruder ON users (email)",
    ],
)
async def test_the_app_role_cannot_change_the_schema(migrated: Roles, statement: str) -> None:
    conn = await migrated.connect("app")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_tables_a_later_migration_adds_are_the_apps_to_use_too(migrated: Roles) -> None:
    owner = await migrated.connect("owner")
    try:
        await owner.execute("CREATE TABLE later_feature (id bigserial PRIMARY KEY, note text)")
    finally:
        await owner.close()
    app = await migrated.connect("app")
    try:
        await app.execute("INSERT INTO later_feature (note) VALUES ('ok')")
        assert await app.fetchval("SELECT count(*) FROM later_feature") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("DROP TABLE later_feature")
    finally:
        await app.close()


# --- the owner and the read-only role ----------------------------------------------------------------


async def test_existing_objects_are_handed_to_the_owner_who_can_migrate_them(migrated: Roles) -> None:
    conn = await migrated.connect("owner")
    try:
        owners = await conn.fetch(
            "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind IN ('r', 'S')"
        )
    finally:
        await conn.close()
    assert [r["owner"] for r in owners] == [migrated.names.owner]
    await schema.downgrade(migrated.url_of("owner"), "-1")
    await schema.upgrade(migrated.url_of("owner"), "head")


async def test_on_an_empty_database_the_owner_migrates_and_the_app_serves(
    fresh_database: Callable[..., Any], make_roles: Callable[[str], Any]
) -> None:
    roles: Roles = await make_roles(await fresh_database())
    await schema.upgrade(roles.url_of("owner"), "head")
    app = await roles.connect("app")
    try:
        await app.execute(
            "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), 'new@example.com', 'x')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("ALTER TABLE users DROP COLUMN email")
    finally:
        await app.close()


async def test_the_read_only_role_reads_everything_and_writes_nothing(migrated: Roles) -> None:
    conn = await migrated.connect("readonly")
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") >= 0
        assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
        with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError)):
            await conn.execute(
                "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), 'ro@example.com', 'x')"
            )
    finally:
        await conn.close()


async def test_bootstrapping_again_rotates_passwords_and_changes_nothing_else(migrated: Roles) -> None:
    conn = await asyncpg.connect(migrated.url)
    try:
        before = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", migrated.names.app)
        assert await bootstrap_roles(conn, PASSWORDS, migrated.names) == 0  # nothing left to hand over
        after = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", migrated.names.app)
    finally:
        await conn.close()
    assert before.startswith("SCRAM-SHA-256$4096:") and after.startswith("SCRAM-SHA-256$4096:")
    assert before != after  # a fresh salt: the server stored our verifier, not a hash of it


# --- passwords -------------------------------------------------------------------------------------


def test_the_scram_verifier_matches_rfc_7677s_example() -> None:
    # RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 rounds.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_verifier("pencil", salt=salt)
    _, rest = verifier.split("$", 1)
    _, keys = rest.split("$")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(server_signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


@pytest.mark.parametrize("password", [None, "", "short", "has spaces in it, sixteen+", "naïve-password-0123456"])
def test_weak_or_unusual_passwords_are_refused_with_the_setting_named(password: str | None) -> None:
    with pytest.raises(OpsError, match="SAGE_DB_APP_PASSWORD"):
        check_password("SAGE_DB_APP_PASSWORD", password)


# --- the command -----------------------------------------------------------------------------------


@pytest.fixture
async def command_roles(empty_database: str) -> AsyncIterator[str]:
    """The command's own role names (sage_owner, ...) exist only for this test."""
    yield empty_database
    conn = await asyncpg.connect(empty_database)
    try:
        for role in (APP, READONLY, OWNER):
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
                await conn.execute(f'DROP OWNED BY "{role}"')
                await conn.execute(f'DROP ROLE "{role}"')
    finally:
        await conn.close()


def command_env(url: str, **passwords: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "PYTHONPATH": f"{REPO / 'src'}:{REPO}", **passwords}


async def test_the_command_creates_the_three_roles(command_roles: str) -> None:
    env = command_env(
        command_roles,
        SAGE_DB_OWNER_PASSWORD=PASSWORDS.owner,
        SAGE_DB_APP_PASSWORD=PASSWORDS.app,
        SAGE_DB_READONLY_PASSWORD=PASSWORDS.readonly,
    )
    result = run_sage("db", "bootstrap-roles", env=env)
    assert result.returncode == 0, result.stderr
    assert "roles sage_owner, sage_app, sage_readonly ready" in result.stdout
    for secret in (PASSWORDS.owner, PASSWORDS.app, PASSWORDS.readonly):
        assert secret not in result.stdout + result.stderr
    conn = await asyncpg.connect(command_roles)
    try:
        found = await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", [OWNER, APP, READONLY])
    finally:
        await conn.close()
    assert {r["rolname"] for r in found} == {OWNER, APP, READONLY}


async def test_the_command_without_a_password_names_the_setting_and_changes_nothing(command_roles: str) -> None:
    env = command_env(command_roles, SAGE_DB_OWNER_PASSWORD=PASSWORDS.owner, SAGE_DB_APP_PASSWORD=PASSWORDS.app)
    result = run_sage("db", "bootstrap-roles", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == "sage: SAGE_DB_READONLY_PASSWORD is not set"
    conn = await asyncpg.connect(command_roles)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", OWNER) == 0
    finally:
        await conn.close()
