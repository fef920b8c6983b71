"""Fleet figures for metrics and health (one query each), and fleet_health_snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

LIVE = "status NOT IN ('merged', 'abandoned', 'cancelled')"


async def fleet_figures(conn: asyncpg.Connection, *, since: datetime) -> dict[str, Any]:
    """Counts over the whole fleet (system scope), failure rate over executions since `since`."""
    row = await conn.fetchrow(
        f"SELECT (SELECT count(*) FROM fleet_tasks WHERE {LIVE}) AS live_agents,"
        " (SELECT count(*) FROM fleet_executions) AS total_spawns,"
        " (SELECT count(*) FROM fleet_executions WHERE failure IS NOT NULL) AS total_failures,"
        " (SELECT count(*) FROM fleet_tasks) AS total_tasks,"
        " (SELECT count(*) FROM fleet_tasks WHERE retry_count > 0) AS retried_tasks,"
        " (SELECT avg(extract(epoch FROM spawned_at - created_at) * 1000) FROM fleet_tasks"
        "   WHERE spawned_at IS NOT NULL) AS avg_spawn_duration_ms,"
        " (SELECT count(*) FROM fleet_executions WHERE finished_at >= $1) AS recent_runs,"
        " (SELECT count(*) FROM fleet_executions WHERE finished_at >= $1 AND failure IS NOT NULL)"
        "   AS recent_failures,"
        " (SELECT count(*) FROM fleet_outbox WHERE processed_at IS NULL) AS outbox_pending,"
        " (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM fleet_outbox"
        "   WHERE processed_at IS NULL) AS outbox_lag_s,"
        " (SELECT count(*) FROM fleet_dead_letters WHERE status IN ('pending', 'retrying')) AS dlq_depth,"
        " (SELECT count(*) FROM fleet_spawn_queue WHERE status = 'queued') AS spawn_queue_depth", since)
    figures = dict(row)
    figures["avg_spawn_duration_ms"] = float(figures["avg_spawn_duration_ms"] or 0.0)
    figures["outbox_lag_s"] = float(figures["outbox_lag_s"])
    return figures


async def insert_snapshot(conn: asyncpg.Connection, *, live_agents: int, failure_rate: float, dlq_depth: int,
                          open_breakers: list[str], outbox_lag_s: float, alerts: list[dict[str, Any]]) -> int:
    return await conn.fetchval(
        "INSERT INTO fleet_health_snapshots (live_agents, failure_rate, dlq_depth, open_breakers,"
        " outbox_lag_s, alerts) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        live_agents, failure_rate, dlq_depth, open_breakers, outbox_lag_s, alerts)


async def latest(conn: asyncpg.Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM fleet_health_snapshots ORDER BY id DESC LIMIT $1", limit)
    return [dict(r) for r in rows]


async def delete_before(conn: asyncpg.Connection, before: datetime) -> int:
    status = await conn.execute("DELETE FROM fleet_health_snapshots WHERE taken_at < $1", before)
    return int(status.split()[-1])
