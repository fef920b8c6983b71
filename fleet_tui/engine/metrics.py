"""Fleet metrics in Prometheus text format: active_agents, total_spawns, total_failures,
retry_rate, avg_spawn_duration_ms, governor_denial_count, monitor, outbox, DLQ and queue
figures. Read from the database (so every conductor of a fleet reports the same) plus the
in-process counters of this conductor."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fleet_tui.store import health as health_store
from fleet_tui.store.db import Database

# name -> (type, help)
METRICS: dict[str, tuple[str, str]] = {
    "active_agents": ("gauge", "live (non-terminal) tasks in the fleet"),
    "total_spawns": ("counter", "agent runs started"),
    "total_failures": ("counter", "agent runs that failed"),
    "retry_rate": ("gauge", "share of tasks retried at least once"),
    "avg_spawn_duration_ms": ("gauge", "mean time from request to running agent"),
    "governor_denial_count": ("counter", "spawns refused by the governor (this conductor)"),
    "governor_admission_count": ("counter", "spawns admitted by the governor (this conductor)"),
    "governor_admissions_total": ("counter", "spawns admitted by the governor (this conductor)"),
    "capacity": ("gauge", "fleet-wide live task capacity"),
    "monitor_running": ("gauge", "1 while this conductor's monitor loop runs"),
    "bus_dropped_events_total": ("counter", "events dropped for slow subscribers (this process)"),
    "monitor_cycles": ("counter", "monitor cycles run (this conductor)"),
    "monitor_errors": ("counter", "monitor errors (this conductor)"),
    "monitor_last_cycle_ms": ("gauge", "duration of the last monitor cycle"),
    "outbox_pending": ("gauge", "outbox events not yet delivered"),
    "outbox_lag_seconds": ("gauge", "age of the oldest undelivered outbox event"),
    "dlq_depth": ("gauge", "open dead letters"),
    "spawn_queue_depth": ("gauge", "spawn requests waiting for capacity"),
    "open_breakers": ("gauge", "circuit breakers currently open"),
}


async def collect(db: Database, *, conductor: Any = None, breakers: Any = None) -> dict[str, float]:
    if breakers is not None:
        await breakers.refresh()
    async with db.system(kind="read") as conn:
        f = await health_store.fleet_figures(conn, since=datetime.now(timezone.utc) - timedelta(hours=1))
    governor = getattr(conductor, "governor", None)
    monitor = getattr(conductor, "monitor", None)
    return {
        "active_agents": f["live_agents"],
        "total_spawns": f["total_spawns"],
        "total_failures": f["total_failures"],
        "retry_rate": round(f["retried_tasks"] / f["total_tasks"], 4) if f["total_tasks"] else 0.0,
        "avg_spawn_duration_ms": round(f["avg_spawn_duration_ms"], 1),
        "governor_denial_count": getattr(governor, "denials", 0),
        "governor_admission_count": getattr(governor, "admissions", 0),
        "monitor_cycles": getattr(monitor, "cycles", 0),
        "monitor_errors": getattr(monitor, "errors", 0),
        "monitor_last_cycle_ms": round(getattr(monitor, "last_cycle_ms", 0.0), 1),
        "outbox_pending": f["outbox_pending"],
        "outbox_lag_seconds": round(f["outbox_lag_s"], 3),
        "dlq_depth": f["dlq_depth"],
        "spawn_queue_depth": f["spawn_queue_depth"],
        "open_breakers": len(breakers.open_names()) if breakers is not None else 0,
        "governor_admissions_total": getattr(governor, "admissions", 0),
        "capacity": getattr(governor, "fleet_capacity", 0),
        "monitor_running": 1 if monitor is not None and monitor.running else 0,
        "bus_dropped_events_total": getattr(getattr(conductor, "bus", None), "dropped", 0),
    }


def render_prometheus(values: dict[str, float], *, prefix: str = "fleet_") -> str:
    """Text exposition format 0.0.4: HELP and TYPE lines, then the sample, per metric."""
    lines: list[str] = []
    for name, value in values.items():
        kind, text = METRICS.get(name, ("gauge", name.replace("_", " ")))
        metric = prefix + name
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}", f"{metric} {_number(value)}"]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
