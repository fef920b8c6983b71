"""fleet_logs: structured log records written in batches; trimmed by retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from collections.abc import Sequence

import asyncpg

FIELDS = ("ts", "level", "logger", "message", "operator_id", "task_id", "trace_id", "span_id",
          "parent_span_id", "fields")


async def insert_many(conn: asyncpg.Connection, records: Sequence[dict[str, Any]]) -> int:
    if not records:
        return 0
    await conn.executemany(
        f"INSERT INTO fleet_logs ({', '.join(FIELDS)}) VALUES ({', '.join(f'${i}' for i in range(1, 11))})",
        [tuple(r.get(name) if name != "fields" else r.get("fields") or {} for name in FIELDS) for r in records])
    return len(records)


async def by_trace(conn: asyncpg.Connection, trace_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT id, {', '.join(FIELDS)} FROM fleet_logs WHERE trace_id = $1 ORDER BY ts, id",
                            trace_id)
    return [dict(r) for r in rows]


async def delete_before(conn: asyncpg.Connection, before: datetime) -> int:
    status = await conn.execute("DELETE FROM fleet_logs WHERE ts < $1", before)
    return int(status.split()[-1])
