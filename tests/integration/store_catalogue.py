"""The schema as the catalogue sees it, and the expected one in schema_catalogue/.

schema_catalogue/NNN_name.json holds, for each table migration NNN creates or changes,
that table's full entry (a later file's entry replaces an earlier one). To write the file
for a new migration, run (it creates and drops its own scratch database):

    .venv/bin/python -m tests.integration.store_catalogue NNN [owner_url]

then read the output as a review of what the migration really did."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import asyncpg

from fleet_tui.store import migrations

EXPECTED_DIR = Path(__file__).parent / "schema_catalogue"
Catalogue = dict[str, dict[str, Any]]


async def read_catalogue(conn: asyncpg.Connection) -> Catalogue:
    """Every fleet_* table (but the ledger): columns, constraints, indexes, triggers, RLS."""
    tables = await conn.fetch(
        "SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
        " AND c.relname LIKE 'fleet\\_%' AND c.relname <> $1 ORDER BY c.relname",
        migrations.LEDGER_TABLE)
    out: Catalogue = {}
    for t in tables:
        columns = await conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull FROM pg_attribute"
            " WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum", t["oid"])
        constraints = await conn.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1"
            " ORDER BY conname", t["oid"])
        indexes = await conn.fetch(
            "SELECT i.relname, pg_get_indexdef(i.oid) AS def FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
            " WHERE x.indrelid = $1 ORDER BY i.relname", t["oid"])
        triggers = await conn.fetch(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal ORDER BY tgname", t["oid"])
        policies = await conn.fetch(
            "SELECT polname FROM pg_policy WHERE polrelid = $1 ORDER BY polname", t["oid"])
        out[t["relname"]] = {
            "columns": {c["attname"]: c["type"] + (" NOT NULL" if c["attnotnull"] else "") for c in columns},
            "constraints": {c["conname"]: c["def"] for c in constraints},
            "indexes": {i["relname"]: i["def"] for i in indexes},
            "triggers": [r["tgname"] for r in triggers],
            "policies": [r["polname"] for r in policies],
            "row_security": bool(t["relrowsecurity"]),
            "force_row_security": bool(t["relforcerowsecurity"]),
        }
    return out


def expected_catalogue(up_to: int | None = None) -> Catalogue:
    """The union of schema_catalogue/*.json for migrations <= up_to (default all)."""
    merged: Catalogue = {}
    for m in migrations.load_migrations():
        if up_to is not None and m.version > up_to:
            break
        merged.update(json.loads(expected_file(m).read_text()))
    return merged


def expected_file(m: migrations.Migration) -> Path:
    return EXPECTED_DIR / f"{m.version:03d}_{m.name}.json"


async def _dump(version: int, owner_url: str) -> None:
    from tests.fixtures.db import create_database, drop_database

    url = await create_database(owner_url)
    try:
        conn = await asyncpg.connect(url)
        try:
            if version > 1:
                await migrations.upgrade_conn(conn, version - 1)
            before = await read_catalogue(conn)
            await migrations.upgrade_conn(conn, version)
            after = await read_catalogue(conn)
        finally:
            await conn.close()
    finally:
        await drop_database(owner_url, url)
    changed = {name: entry for name, entry in after.items() if before.get(name) != entry}
    print(json.dumps(changed, indent=2, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(_dump(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2
                      else "postgresql://postgres@127.0.0.1:5432/postgres"))
