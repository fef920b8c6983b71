"""Plain SQL migrations from sql/ (fleet_tui/assets.py finds it): NNN_name.sql up, NNN_name.down.sql down.

Each migration runs in its own transaction and is recorded in fleet_schema_migrations with
the SHA-256 of its up file; an upgrade first compares every applied migration's recorded
checksum with the file shipped now and refuses (MigrationEditedError) when one was edited
after it ran. A session advisory lock keeps two processes from migrating the same database
at once. Adding a migration is adding two files; changing an applied one is a new migration."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import asyncpg

from fleet_tui.assets import asset_dir
from fleet_tui.domain.errors import MigrationEditedError, ValidationFailed
from fleet_tui.store.connect import connect_owner

_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql\Z")
# Arbitrary constant; advisory locks are per database, so this only serialises migrators.
MIGRATION_LOCK_KEY = 0x466C656574_01  # "Fleet" + 1
LEDGER_TABLE = "fleet_schema_migrations"

_LEDGER_DDL = f"""
CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up_sql: str
    down_sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up_sql.encode()).hexdigest()


class MigrationState(NamedTuple):
    version: int
    name: str
    applied_at: datetime | None
    checksum_ok: bool | None = None  # None while pending


def load_migrations() -> list[Migration]:
    """Every migration shipped in sql/, in order; each must have its down file."""
    folder = asset_dir("sql")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if not match:
            continue
        down = folder / f"{match.group(1)}_{match.group(2)}.down.sql"
        if not down.is_file():
            raise RuntimeError(f"migration {entry.name} has no down migration {down.name}")
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(), down.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {folder}: {versions}")
    return found


def latest_version() -> int:
    migrations = load_migrations()
    return migrations[-1].version if migrations else 0


def check_target(target: int, *, field: str = "to") -> None:
    known = {0} | {m.version for m in load_migrations()}
    if target not in known:
        raise ValidationFailed(field, f"must be one of the known migration numbers {sorted(known)}")


async def _applied(conn: asyncpg.Connection) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch(f"SELECT version, applied_at, checksum FROM {LEDGER_TABLE}")
    return {r["version"]: r for r in rows}


def verify_checksums(applied: dict[int, asyncpg.Record], shipped: list[Migration]) -> None:
    for m in shipped:
        row = applied.get(m.version)
        if row is not None and row["checksum"] != m.checksum:
            raise MigrationEditedError(version=m.version, name=m.name, checksum=m.checksum,
                                       recorded=row["checksum"])


async def _locked(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    await conn.execute(_LEDGER_DDL)


async def upgrade_conn(conn: asyncpg.Connection, target: int | None = None) -> list[int]:
    """Apply pending migrations up to target (default: all) on an owner connection."""
    if target is not None:
        check_target(target)
    await _locked(conn)
    try:
        applied = await _applied(conn)
        shipped = load_migrations()
        verify_checksums(applied, shipped)
        done: list[int] = []
        for m in shipped:
            if m.version in applied or (target is not None and m.version > target):
                continue
            async with conn.transaction():
                await conn.execute(m.up_sql)
                await conn.execute(
                    f"INSERT INTO {LEDGER_TABLE} (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version, m.name, m.checksum,
                )
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def downgrade_conn(conn: asyncpg.Connection, target: int = 0) -> list[int]:
    """Revert applied migrations above target, newest first."""
    check_target(target)
    await _locked(conn)
    try:
        applied = await _applied(conn)
        undone: list[int] = []
        for m in reversed(load_migrations()):
            if m.version not in applied or m.version <= target:
                continue
            async with conn.transaction():
                await conn.execute(m.down_sql)
                await conn.execute(f"DELETE FROM {LEDGER_TABLE} WHERE version = $1", m.version)
            undone.append(m.version)
        return undone
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def status_conn(conn: asyncpg.Connection) -> list[MigrationState]:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", LEDGER_TABLE)
    applied = await _applied(conn) if exists else {}
    states = []
    for m in load_migrations():
        row = applied.get(m.version)
        states.append(MigrationState(m.version, m.name, row["applied_at"] if row else None,
                                     row["checksum"] == m.checksum if row else None))
    return states


async def upgrade(owner_url: str, target: int | None = None) -> list[int]:
    async with connect_owner(owner_url) as conn:
        return await upgrade_conn(conn, target)


async def downgrade(owner_url: str, target: int = 0) -> list[int]:
    async with connect_owner(owner_url) as conn:
        return await downgrade_conn(conn, target)


async def status(owner_url: str) -> list[MigrationState]:
    async with connect_owner(owner_url) as conn:
        return await status_conn(conn)
