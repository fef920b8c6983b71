"""fleet_notifications: the record of each notification, written before any delivery."""

from __future__ import annotations

import asyncpg


async def record(conn: asyncpg.Connection, *, task_id: str | None, operator_id: str, type: str,
                 summary: str, channel: str = "all") -> int:
    return await conn.fetchval(
        "INSERT INTO fleet_notifications (task_id, operator_id, type, channel, payload)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        task_id, operator_id, type, channel, {"summary": summary},
    )
