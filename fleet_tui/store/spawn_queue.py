"""fleet_spawn_queue: spawn requests waiting for room in the fleet, taken highest priority
first, then oldest; fleet_dedup_keys: keys of events and requests seen within a window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

COLUMNS = "id, operator_id, priority, request, dedup_key, status, task_id, error, trace_id, created_at, admitted_at"


async def enqueue(conn: asyncpg.Connection, *, operator_id: str, priority: int, request: dict[str, Any],
                  dedup_key: str | None, trace_id: str | None, created_at: datetime) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"INSERT INTO fleet_spawn_queue (operator_id, priority, request, dedup_key, trace_id, created_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}",
        operator_id, priority, request, dedup_key, trace_id, created_at)
    return dict(row)


async def fail_queued(conn: asyncpg.Connection, entry_id: int, error: str) -> None:
    """A queued request that can never be admitted. Admission itself happens in fleet_admit_one
    (sql/011), in the transaction that creates the task."""
    await conn.execute("UPDATE fleet_spawn_queue SET status = 'failed', error = $2"
                       " WHERE id = $1 AND status = 'queued'", entry_id, error)


async def list_queued(conn: asyncpg.Connection, limit: int = 500) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM fleet_spawn_queue WHERE status = 'queued'"
        f" ORDER BY priority DESC, created_at, id LIMIT $1", limit)
    return [dict(r) for r in rows]


async def count_queued(conn: asyncpg.Connection) -> int:
    queued: int = await conn.fetchval("SELECT count(*) FROM fleet_spawn_queue WHERE status = 'queued'")
    return queued


# --- dedup keys ----------------------------------------------------------------------------


async def see_key(conn: asyncpg.Connection, *, operator_id: str, key: str, now: datetime, window_s: float,
                  ref: str | None = None) -> tuple[bool, str | None]:
    """Note a dedup key at `now`. (True, ref) the first time in the window (the window opens
    then); (False, ref of the first) for a repeat within window_s of it. One statement."""
    row = await conn.fetchrow(
        "INSERT INTO fleet_dedup_keys AS d (operator_id, dedup_key, ref, first_seen, last_seen)"
        " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (operator_id, dedup_key) DO UPDATE SET"
        " ref = CASE WHEN d.first_seen <= $4 - make_interval(secs => $5) THEN EXCLUDED.ref ELSE d.ref END,"
        " hits = CASE WHEN d.first_seen <= $4 - make_interval(secs => $5) THEN 1 ELSE d.hits + 1 END,"
        " first_seen = CASE WHEN d.first_seen <= $4 - make_interval(secs => $5) THEN $4 ELSE d.first_seen END,"
        " last_seen = $4 RETURNING hits, ref", operator_id, key, ref, now, float(window_s))
    return row["hits"] == 1, row["ref"]


async def set_key_ref(conn: asyncpg.Connection, *, operator_id: str, key: str, ref: str) -> None:
    await conn.execute("UPDATE fleet_dedup_keys SET ref = $3 WHERE operator_id = $1 AND dedup_key = $2",
                       operator_id, key, ref)


async def forget_keys_before(conn: asyncpg.Connection, before: datetime) -> int:
    status = await conn.execute("DELETE FROM fleet_dedup_keys WHERE last_seen < $1", before)
    return int(status.split()[-1])
