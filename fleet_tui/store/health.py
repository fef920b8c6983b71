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
        " (SELECT count(*) FROM fleet_audit WHERE action = 'transition' AND to_status = 'failed')"
        "   AS failed_attempts,"
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


async def metric_series(conn: asyncpg.Connection, *, spawn_buckets: tuple[float, ...]) -> dict[str, list[dict[str, Any]]]:
    """Labelled fleet-wide series for the metrics exposition (system scope): live tasks by
    status and operator tier, agent runs and their failures by agent and model, failed
    attempts (every transition into failed: spawn, agent, CI), and each attempt's
    spawning-to-running duration counted per bucket (cumulative, `le` inclusive) by agent."""
    tasks = await conn.fetch(
        "SELECT t.status, coalesce(o.tier, 'unknown') AS tier, count(*) AS n FROM fleet_tasks t"
        " LEFT JOIN fleet_operators o ON o.id = t.operator_id GROUP BY 1, 2 ORDER BY 1, 2")
    runs = await conn.fetch(
        "SELECT agent, coalesce(model, 'default') AS model, count(*) AS n,"
        " count(*) FILTER (WHERE failure IS NOT NULL) AS failed FROM fleet_executions"
        " GROUP BY 1, 2 ORDER BY 1, 2")
    failed = await conn.fetch(
        "SELECT coalesce(t.agent, 'unknown') AS agent, count(*) AS n FROM fleet_audit a"
        " LEFT JOIN fleet_tasks t ON t.id = a.task_id"
        " WHERE a.action = 'transition' AND a.to_status = 'failed' GROUP BY 1 ORDER BY 1")
    # One sample per attempt: from the task's move into spawning to its move into running.
    # The bounds are the module's constants, never input: inlined as float literals.
    counts = ", ".join(f"count(*) FILTER (WHERE s <= {float(b)!r}) AS le_{i}" for i, b in enumerate(spawn_buckets))
    spawns = await conn.fetch(
        f"SELECT agent, count(*) AS n, coalesce(sum(s), 0) AS total{', ' + counts if counts else ''} FROM"
        " (SELECT a.to_status, coalesce(t.agent, 'unknown') AS agent,"
        "   extract(epoch FROM a.created_at - lag(a.created_at) OVER (PARTITION BY a.task_id ORDER BY a.id))::float8 AS s"
        "  FROM fleet_audit a JOIN fleet_tasks t ON t.id = a.task_id"
        "  WHERE a.action = 'transition' AND a.to_status IN ('spawning', 'running')) d"
        " WHERE to_status = 'running' AND s IS NOT NULL GROUP BY agent ORDER BY agent")
    return {
        "tasks": [dict(r) for r in tasks],
        "runs": [dict(r) for r in runs],
        "failed_attempts": [dict(r) for r in failed],
        "spawn_to_running": [
            {"agent": r["agent"], "count": r["n"], "sum": float(r["total"]),
             "buckets": [r[f"le_{i}"] for i in range(len(spawn_buckets))]} for r in spawns],
    }


async def insert_snapshot(conn: asyncpg.Connection, *, live_agents: int, failure_rate: float, dlq_depth: int,
                          open_breakers: list[str], outbox_lag_s: float, alerts: list[dict[str, Any]]) -> int:
    snapshot_id: int = await conn.fetchval(
        "INSERT INTO fleet_health_snapshots (live_agents, failure_rate, dlq_depth, open_breakers,"
        " outbox_lag_s, alerts) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        live_agents, failure_rate, dlq_depth, open_breakers, outbox_lag_s, alerts)
    return snapshot_id


async def latest(conn: asyncpg.Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM fleet_health_snapshots ORDER BY id DESC LIMIT $1", limit)
    return [dict(r) for r in rows]


async def delete_before(conn: asyncpg.Connection, before: datetime) -> int:
    status = await conn.execute("DELETE FROM fleet_health_snapshots WHERE taken_at < $1", before)
    return int(status.split()[-1])
