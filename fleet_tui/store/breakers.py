"""fleet_breakers: circuit breaker states shared by every conductor of a fleet. A change is
read under the row's lock, decided by the breaker's own rules (engine.kit.breaker), written back
in the same transaction."""

from __future__ import annotations

from typing import Any

import asyncpg


async def lock(conn: asyncpg.Connection, name: str) -> dict[str, Any]:
    """The breaker's stored state (empty for a new one), its row locked until commit."""
    await conn.execute("INSERT INTO fleet_breakers (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name)
    state: dict[str, Any] = await conn.fetchval("SELECT state FROM fleet_breakers WHERE name = $1 FOR UPDATE", name)
    return state


async def save(conn: asyncpg.Connection, name: str, state: dict[str, Any]) -> None:
    await conn.execute("UPDATE fleet_breakers SET state = $2, updated_at = now() WHERE name = $1", name, state)


async def all_states(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    return {r["name"]: r["state"] for r in await conn.fetch("SELECT name, state FROM fleet_breakers")}
