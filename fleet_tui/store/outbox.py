"""fleet_outbox: events written in the same transaction as the change they announce."""

from __future__ import annotations

from typing import Any

import asyncpg


async def enqueue(
    conn: asyncpg.Connection,
    event_type: str,
    payload: dict[str, Any],
    *,
    task_id: str | None,
    operator_id: str,
    dedup_key: str | None = None,
) -> int | None:
    """Add an event inside the caller's transaction. A repeated dedup_key is a no-op
    (returns None), so a retried writer never announces the same change twice."""
    return await conn.fetchval(
        "INSERT INTO fleet_outbox (event_type, payload, task_id, operator_id, dedup_key)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        event_type, payload, task_id, operator_id, dedup_key,
    )
