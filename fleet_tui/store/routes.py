"""fleet_event_routes, fleet_sequences, fleet_handoff_routes (operator NULL = platform
default) and fleet_route_runs. The engine validates; this module only reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class PolicyTable:
    table: str
    key: str
    columns: tuple[str, ...]  # written on upsert, besides operator_id and the key


TABLES: dict[str, PolicyTable] = {
    "route": PolicyTable("fleet_event_routes", "event_type", ("sequence_name", "match", "enabled")),
    "sequence": PolicyTable("fleet_sequences", "name", ("description", "steps")),
    "handoff": PolicyTable("fleet_handoff_routes", "name",
                           ("source_sequence", "source_step", "target_sequence", "conditions",
                            "context_map", "enabled")),
}


def _table(kind: str) -> PolicyTable:
    if kind not in TABLES:
        raise ValueError(f"kind: must be one of {sorted(TABLES)}")
    return TABLES[kind]


async def resolve_policy(conn: asyncpg.Connection, operator_id: str) -> dict[str, Any]:
    """The effective policy of the operator, decided by fleet_resolve_policy()."""
    policy: dict[str, Any] = await conn.fetchval("SELECT fleet_resolve_policy($1)", operator_id)
    return policy


async def list_rows(conn: asyncpg.Connection, kind: str, operator_id: str | None) -> list[dict[str, Any]]:
    """Platform rows and the operator's rows (operator None: every row visible), by key."""
    t = _table(kind)
    cols = ", ".join(("operator_id", t.key, *t.columns, "updated_at"))
    if operator_id is None:
        rows = await conn.fetch(f"SELECT {cols} FROM {t.table} ORDER BY {t.key}, operator_id NULLS FIRST")
    else:
        rows = await conn.fetch(
            f"SELECT {cols} FROM {t.table} WHERE operator_id IS NULL OR operator_id = $1"
            f" ORDER BY {t.key}, operator_id NULLS FIRST", operator_id)
    return [dict(r) for r in rows]


async def upsert(conn: asyncpg.Connection, kind: str, operator_id: str | None,
                 row: dict[str, Any]) -> dict[str, Any]:
    """Insert or replace the (operator, key) row; operator None writes the platform default."""
    t = _table(kind)
    names = (t.key, *t.columns)
    values = [row[name] for name in names]
    placeholders = ", ".join(f"${i}" for i in range(2, len(names) + 2))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in t.columns)
    record = await conn.fetchrow(
        f"INSERT INTO {t.table} (operator_id, {', '.join(names)}) VALUES ($1, {placeholders})"
        f" ON CONFLICT (operator_id, {t.key}) DO UPDATE SET {updates}"
        f" RETURNING operator_id, {', '.join(names)}", operator_id, *values)
    return dict(record)


async def delete(conn: asyncpg.Connection, kind: str, operator_id: str | None, key: str) -> bool:
    t = _table(kind)
    status: str = await conn.execute(
        f"DELETE FROM {t.table} WHERE operator_id IS NOT DISTINCT FROM $1 AND {t.key} = $2",
        operator_id, key)
    return status.endswith(" 1")


async def remember_operator(conn: asyncpg.Connection, operator_id: str, tier: str, is_admin: bool) -> None:
    """Record the operator's tier as its token says, for steps that later act on its behalf."""
    await conn.execute(
        "INSERT INTO fleet_operators AS o (id, tier, is_admin) VALUES ($1, $2, $3)"
        " ON CONFLICT (id) DO UPDATE SET tier = EXCLUDED.tier, is_admin = EXCLUDED.is_admin"
        " WHERE o.tier IS DISTINCT FROM EXCLUDED.tier OR o.is_admin IS DISTINCT FROM EXCLUDED.is_admin",
        operator_id, tier, is_admin)


async def operator_identity(conn: asyncpg.Connection, operator_id: str) -> tuple[str, bool] | None:
    """(tier, is_admin) of a known operator, for steps that act on its behalf."""
    row = await conn.fetchrow("SELECT tier, is_admin FROM fleet_operators WHERE id = $1", operator_id)
    return None if row is None else (row["tier"], row["is_admin"])


# --- runs ------------------------------------------------------------------------------------


async def start_run(conn: asyncpg.Connection, *, operator_id: str, event_type: str, sequence_name: str,
                    depth: int, parent_run_id: int | None, context: dict[str, Any],
                    trace_id: str | None, status: str = "running", error: str | None = None) -> int:
    run_id: int = await conn.fetchval(
        "INSERT INTO fleet_route_runs (operator_id, event_type, sequence_name, depth, parent_run_id,"
        " context, trace_id, status, error, finished_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $8 = 'running' THEN NULL ELSE now() END)"
        " RETURNING id",
        operator_id, event_type, sequence_name, depth, parent_run_id, context, trace_id, status, error)
    return run_id


async def finish_run(conn: asyncpg.Connection, run_id: int, *, status: str, results: dict[str, Any],
                     error: str | None = None) -> None:
    await conn.execute(
        "UPDATE fleet_route_runs SET status = $2, results = $3, error = $4, finished_at = now()"
        " WHERE id = $1", run_id, status, results, error)


async def list_runs(conn: asyncpg.Connection, *, limit: int = 100,
                    parent_run_id: int | None = None) -> list[dict[str, Any]]:
    if parent_run_id is None:
        rows = await conn.fetch("SELECT * FROM fleet_route_runs ORDER BY id DESC LIMIT $1", limit)
    else:
        rows = await conn.fetch("SELECT * FROM fleet_route_runs WHERE parent_run_id = $1 ORDER BY id",
                                parent_run_id)
    return [dict(r) for r in rows]
