"""fleet_limits: sliding-window limits shared by every conductor of the fleet (an operator's
spawn requests, the fleet's GitHub calls), taken by fleet_take in sql/010."""

from __future__ import annotations

import asyncpg


async def take(conn: asyncpg.Connection, key: str, limit: int, window_s: float, *, durable: bool = True) -> float:
    """Take one hit of key: 0.0 when taken, else seconds until one is free again (negative:
    the key is paused for that many seconds, sql/012). durable=False: the caller's commit does
    not wait for the write-ahead log's flush (a database crash may forget the last hits; the
    limit stays exact across conductors, by the row lock)."""
    if durable:
        return float(await conn.fetchval("SELECT fleet_take($1, $2, $3)", key, limit, float(window_s)))
    row = await conn.fetchrow("SELECT set_config('synchronous_commit', 'off', true), fleet_take($1, $2, $3)",
                              key, limit, float(window_s))
    return float(row[1])


async def taken(conn: asyncpg.Connection, key: str, window_s: float) -> int:
    """Hits of key within the window (nothing taken)."""
    return int(await conn.fetchval(
        "SELECT count(*) FROM fleet_limits l, unnest(l.hits) h"
        " WHERE l.key = $1 AND h > clock_timestamp() - make_interval(secs => $2)", key, float(window_s)))


async def pause(conn: asyncpg.Connection, key: str, seconds: float) -> None:
    """No hit of key is taken for seconds (a longer pause in force stays)."""
    await conn.execute("SELECT fleet_pause($1, $2)", key, float(seconds))
