"""fleet_config: an operator's preferences, one JSON value per key, in the database so that
every conductor of the fleet reads the same and a change holds at once (row-level security:
an operator reads and writes only their own). The engine decides which keys exist
(engine/choice/preferences.py); this module only reads and writes."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def all_of(conn: asyncpg.Connection, operator_id: str) -> dict[str, Any]:
    rows = await conn.fetch("SELECT key, value FROM fleet_config WHERE operator_id = $1 ORDER BY key", operator_id)
    return {row["key"]: json.loads(row["value"]) for row in rows}


async def put(conn: asyncpg.Connection, operator_id: str, key: str, value: Any) -> None:
    await conn.execute(
        "INSERT INTO fleet_config (operator_id, key, value) VALUES ($1, $2, $3::jsonb)"
        " ON CONFLICT (operator_id, key) DO UPDATE SET value = EXCLUDED.value", operator_id, key, json.dumps(value))


async def remove(conn: asyncpg.Connection, operator_id: str, key: str) -> bool:
    status: str = await conn.execute("DELETE FROM fleet_config WHERE operator_id = $1 AND key = $2",
                                     operator_id, key)
    return status != "DELETE 0"


async def values_of(conn: asyncpg.Connection, key: str) -> dict[str, Any]:
    """Every operator's value of key (a system read: the engine decides for all of them)."""
    rows = await conn.fetch("SELECT operator_id, value FROM fleet_config WHERE key = $1", key)
    return {row["operator_id"]: json.loads(row["value"]) for row in rows}
