"""fleet_dead_letters: failed critical steps and follow-ups. A run is failed and
dead-lettered by one statement, so a crash can never leave a failure without its letter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

COLUMNS = ("id, run_id, operator_id, task_id, event_type, sequence_name, step_name, context, error,"
           " depth, attempts, status, next_attempt_at, trace_id, created_at, updated_at")


async def fail_run(conn: asyncpg.Connection, run_id: int, *, results: dict[str, Any], error: str,
                   step_name: str | None, next_attempt_at: datetime,
                   dead_letter_id: int | None = None) -> int:
    """Mark the run failed and, in the same statement, add its dead letter (or, when the run
    was a retry of dead_letter_id, count the attempt on that letter). Returns the letter id."""
    failed_cte = (
        "WITH failed AS (UPDATE fleet_route_runs SET status = 'failed', results = $2, error = $3,"
        " finished_at = now() WHERE id = $1 RETURNING *)")
    if dead_letter_id is None:
        letter_id: int = await conn.fetchval(
            failed_cte +
            " INSERT INTO fleet_dead_letters (run_id, operator_id, task_id, event_type, sequence_name,"
            " step_name, context, error, depth, trace_id, next_attempt_at)"
            " SELECT id, operator_id, context->>'task_id', event_type, sequence_name, $4, context, error,"
            " depth, trace_id, $5 FROM failed RETURNING id",
            run_id, results, error, step_name, next_attempt_at)
        return letter_id
    letter_id = await conn.fetchval(
        failed_cte +
        " UPDATE fleet_dead_letters d SET run_id = failed.id, error = failed.error, step_name = $4,"
        " attempts = d.attempts + 1, status = 'pending', next_attempt_at = $5"
        " FROM failed WHERE d.id = $6 RETURNING d.id",
        run_id, results, error, step_name, next_attempt_at, dead_letter_id)
    return letter_id


async def resolve(conn: asyncpg.Connection, letter_id: int, run_id: int) -> None:
    await conn.execute(
        "UPDATE fleet_dead_letters SET status = 'resolved', run_id = $2, attempts = attempts + 1"
        " WHERE id = $1", letter_id, run_id)


async def get(conn: asyncpg.Connection, letter_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM fleet_dead_letters WHERE id = $1", letter_id)
    return None if row is None else dict(row)


async def list_letters(conn: asyncpg.Connection, *, statuses: list[str] | None = None,
                       limit: int = 200) -> list[dict[str, Any]]:
    if statuses:
        rows = await conn.fetch(
            f"SELECT {COLUMNS} FROM fleet_dead_letters WHERE status = ANY($1::text[])"
            " ORDER BY id DESC LIMIT $2", statuses, limit)
    else:
        rows = await conn.fetch(f"SELECT {COLUMNS} FROM fleet_dead_letters ORDER BY id DESC LIMIT $1", limit)
    return [dict(r) for r in rows]


async def claim(conn: asyncpg.Connection, letter_id: int) -> dict[str, Any] | None:
    """Take a pending letter for a retry now (None if it is not pending)."""
    row = await conn.fetchrow(
        f"UPDATE fleet_dead_letters SET status = 'retrying' WHERE id = $1 AND status = 'pending'"
        f" RETURNING {COLUMNS}", letter_id)
    return None if row is None else dict(row)


async def claim_due(conn: asyncpg.Connection, now: datetime, limit: int = 20) -> list[dict[str, Any]]:
    """Pending letters whose time has come, taken for retry; other workers skip them."""
    rows = await conn.fetch(
        f"UPDATE fleet_dead_letters SET status = 'retrying' WHERE id IN ("
        f" SELECT id FROM fleet_dead_letters WHERE status = 'pending' AND next_attempt_at <= $1"
        f" ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}", now, limit)
    return [dict(r) for r in rows]


async def release(conn: asyncpg.Connection, letter_id: int) -> None:
    """Give a claimed letter back untouched (its retry could not start)."""
    await conn.execute(
        "UPDATE fleet_dead_letters SET status = 'pending' WHERE id = $1 AND status = 'retrying'", letter_id)


async def discard(conn: asyncpg.Connection, letter_id: int) -> bool:
    status: str = await conn.execute(
        "UPDATE fleet_dead_letters SET status = 'discarded' WHERE id = $1 AND status IN ('pending', 'retrying')",
        letter_id)
    return status.endswith(" 1")


async def depth(conn: asyncpg.Connection) -> int:
    pending: int = await conn.fetchval("SELECT count(*) FROM fleet_dead_letters WHERE status IN ('pending', 'retrying')")
    return pending
