"""The app role: LOGIN, never superuser, owner or BYPASSRLS, so row-level security binds it.

Roles are cluster-wide and several processes (conductors, test sessions) may bootstrap at
once, so creation tolerates losing the race; grants are per database and run under the
migration lock."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from fleet_tui.domain.errors import ConfigError

_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
PASSWORD_FILE = "app-role.password"
# Tables the app may read and append to but never rewrite: history.
APPEND_ONLY_TABLES = ("fleet_audit",)
# Tables the app must not touch at all.
PRIVATE_TABLES = ("fleet_schema_migrations",)
_RETRIES = 5


def _ident(role: str) -> str:
    if not _ROLE_RE.match(role):
        raise ConfigError(f"database.app_role: {role!r} must match {_ROLE_RE.pattern}")
    return f'"{role}"'


def app_password(owner_url: str, role: str, data_dir: Path) -> str | None:
    """The app role's password: an operator-supplied 0600 file under data_dir wins; else
    derived from the owner's password, so every host sharing DATABASE_URL agrees on it
    without storing it; None when the owner has none (trust/peer/.pgpass setups)."""
    path = data_dir / PASSWORD_FILE
    if path.is_file():
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: must be readable by its owner only (chmod 600)")
        return path.read_text().strip() or None
    owner_password = urlsplit(owner_url).password
    if not owner_password:
        return None
    digest = hmac.new(owner_password.encode(), f"fleet-app-role:{role}".encode(), hashlib.sha256)
    return digest.hexdigest()


def scram_verifier(password: str, role: str, iterations: int = 4096) -> str:
    """A SCRAM-SHA-256 verifier, so the clear password never reaches the server's logs.
    The salt is derived (not random) so that repeated bootstraps write the same value."""
    salt = hashlib.sha256(f"fleet-salt:{role}:{password}".encode()).digest()[:16]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def _retry_concurrent(conn: asyncpg.Connection, sql: str) -> None:
    """Catalogue updates racing another session fail with 'tuple concurrently updated'."""
    for attempt in range(_RETRIES):
        try:
            await conn.execute(sql)
            return
        except asyncpg.InternalServerError as exc:
            if "concurrently" not in str(exc) or attempt == _RETRIES - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


async def ensure_app_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    ident = _ident(role)
    owner = await conn.fetchval("SELECT current_user")
    if owner == role:
        raise ConfigError("database.app_role: must differ from the migrating (owner) user of DATABASE_URL")
    exists = await conn.fetchrow(
        "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1", role)
    if exists is None:
        try:
            await conn.execute(
                f"CREATE ROLE {ident} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT")
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # a concurrent bootstrap created it first
    elif exists["rolsuper"] or exists["rolbypassrls"] or not exists["rolcanlogin"]:
        await _retry_concurrent(conn, f"ALTER ROLE {ident} LOGIN NOSUPERUSER NOBYPASSRLS")
    if password:
        verifier = scram_verifier(password, role)
        await _retry_concurrent(conn, f"ALTER ROLE {ident} PASSWORD '{verifier}'")


async def grant_app_role(conn: asyncpg.Connection, role: str) -> None:
    """DML on every fleet_* table and sequence of this database; call under the migration lock."""
    ident = _ident(role)
    tables = [r["tablename"] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'fleet\\_%'")]
    sequences = [r["sequencename"] for r in await conn.fetch(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() AND sequencename LIKE 'fleet\\_%'")]
    database = await conn.fetchval("SELECT quote_ident(current_database())")
    schema = await conn.fetchval("SELECT quote_ident(current_schema())")
    statements = [f"GRANT CONNECT ON DATABASE {database} TO {ident}", f"GRANT USAGE ON SCHEMA {schema} TO {ident}"]
    for table in tables:
        quoted = f'"{table}"'
        if table in PRIVATE_TABLES:
            statements.append(f"REVOKE ALL ON {quoted} FROM {ident}")
        elif table in APPEND_ONLY_TABLES:
            statements.append(f"GRANT SELECT, INSERT ON {quoted} TO {ident}")
            statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {quoted} FROM {ident}")
        else:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {quoted} TO {ident}")
    for sequence in sequences:
        statements.append(f'GRANT USAGE, SELECT ON SEQUENCE "{sequence}" TO {ident}')
    for sql in statements:
        await _retry_concurrent(conn, sql)
