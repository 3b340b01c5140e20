"""`sage db bootstrap-roles`: the least-privilege database roles, created by the master user.

Three login roles, so that nothing at run time holds the RDS master credentials:

* owner (`sage_owner`, CREATEDB): owns the schema's objects; `sage db migrate` and
  `sage db verify-backup` (which restores into a scratch database it creates and drops) use it.
* app (`sage_app`): the API and the ingestor. SELECT / INSERT / UPDATE / DELETE on the tables
  and USAGE / SELECT / UPDATE on the sequences of schema `public`, nothing else: it cannot
  CREATE, ALTER or DROP anything. Default privileges cover the tables later migrations add.
* readonly (`sage_readonly`): `sage db backup` (pg_dump reads; every transaction read-only).

Run it with the master user's DATABASE_URL: once before the first `sage db migrate`, again after
restoring a backup taken before the roles existed, and to rotate the three passwords (it is
idempotent). Existing objects in `public` are handed to the owner, so a database the master
user migrated before keeps working. Passwords go to the server as SCRAM-SHA-256 verifiers
(RFC 5802/7677), never in clear text, so no statement log can reveal them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import asyncpg

from sage.ops.common import OpsError
from sage.ops.pgtools import quote_ident

OWNER, APP, READONLY = "sage_owner", "sage_app", "sage_readonly"
SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
APP_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
APP_SEQUENCE_PRIVILEGES = "USAGE, SELECT, UPDATE"
MIN_PASSWORD_LENGTH = 16


@dataclass(frozen=True)
class RolePasswords:
    owner: str
    app: str
    readonly: str


@dataclass(frozen=True)
class RoleNames:
    owner: str = OWNER
    app: str = APP
    readonly: str = READONLY


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (pg_authid.rolpassword)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def check_password(label: str, password: str | None) -> str:
    """Printable ASCII of a useful length (SASLprep is then the identity), or an OpsError."""
    if not password:
        raise OpsError(f"{label} is not set", 2)
    if len(password) < MIN_PASSWORD_LENGTH or not all(33 <= ord(ch) <= 126 for ch in password):
        raise OpsError(f"{label} must be at least {MIN_PASSWORD_LENGTH} printable ASCII characters, no spaces", 2)
    return password


async def _ensure_role(conn: asyncpg.Connection, name: str, attributes: str, password: str) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
    verb = "ALTER" if exists else "CREATE"
    # Utility statements take no parameters; the verifier is base64 and '$'/':' only.
    await conn.execute(f"{verb} ROLE {quote_ident(name)} {attributes} PASSWORD '{scram_verifier(password)}'")


async def _hand_objects_to(conn: asyncpg.Connection, owner: str) -> int:
    """Give the owner every table, view, sequence, type and function in `public` it does not own."""
    rows = await conn.fetch(
        """
        SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                              WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END AS kind,
               format('%I.%I', n.nspname, c.relname) AS name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND pg_get_userbyid(c.relowner) <> $1
          -- a sequence owned by a column moves with its table
          AND NOT (c.relkind = 'S' AND EXISTS (
                SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
        UNION ALL
        SELECT 'TYPE', format('%I.%I', n.nspname, t.typname)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r', 'm')
          AND pg_get_userbyid(t.typowner) <> $1
        UNION ALL
        SELECT 'FUNCTION', format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prokind = 'f' AND pg_get_userbyid(p.proowner) <> $1
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        """,
        owner,
    )
    for row in rows:
        await conn.execute(f"ALTER {row['kind']} {row['name']} OWNER TO {quote_ident(owner)}")
    return len(rows)


async def bootstrap_roles(conn: asyncpg.Connection, passwords: RolePasswords, names: RoleNames = RoleNames()) -> int:
    """Create or update the three roles and their privileges, in one transaction.

    Returns how many existing objects were handed to the owner."""
    owner, app, readonly = (quote_ident(n) for n in (names.owner, names.app, names.readonly))
    database = quote_ident(str(await conn.fetchval("SELECT current_database()")))
    async with conn.transaction():
        await _ensure_role(conn, names.owner, "LOGIN CREATEDB NOCREATEROLE", passwords.owner)
        await _ensure_role(conn, names.app, "LOGIN NOCREATEDB NOCREATEROLE", passwords.app)
        await _ensure_role(conn, names.readonly, "LOGIN NOCREATEDB NOCREATEROLE", passwords.readonly)
        await conn.execute(f"ALTER ROLE {readonly} SET default_transaction_read_only = on")
        # The bootstrapping user (the RDS master, not a superuser) must be a member of the owner
        # to hand objects to it and to set default privileges for it.
        await conn.execute(f"GRANT {owner} TO CURRENT_USER")
        await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {owner}, {app}, {readonly}")
        # Only the owner creates in `public` (PostgreSQL 15+ already denies PUBLIC; older ones do not).
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {owner}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {app}, {readonly}")
        moved = await _hand_objects_to(conn, names.owner)
        await conn.execute(f"GRANT {APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {app}")
        await conn.execute(f"GRANT {APP_SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA public TO {app}")
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {readonly}")
        await conn.execute(f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {readonly}")
        default = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT"
        await conn.execute(f"{default} {APP_TABLE_PRIVILEGES} ON TABLES TO {app}")
        await conn.execute(f"{default} {APP_SEQUENCE_PRIVILEGES} ON SEQUENCES TO {app}")
        await conn.execute(f"{default} SELECT ON TABLES TO {readonly}")
        await conn.execute(f"{default} SELECT ON SEQUENCES TO {readonly}")
    return moved
