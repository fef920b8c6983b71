"""Fleet metrics: `collect` gives the faces' health panels their figures; `exposition`
renders the Prometheus text format through prometheus_client, from the database (so every
conductor of a fleet reports the same fleet-wide series) plus this process's own counters
and histograms (Telemetry: monitor cycle time, outbox delivery lag), which Prometheus sums
across conductors.

Naming follows Prometheus' conventions: counters end in `_total` (prometheus_client adds
it), durations are histograms in seconds, and each value is exported once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, UTC
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from fleet_tui.domain.models import Tier
from fleet_tui.domain.status import TERMINAL_STATUSES
from fleet_tui.engine.ops.health import BreakerFigures
from fleet_tui.store import health as health_store
from fleet_tui.store.db import Database

CONTENT_TYPE = CONTENT_TYPE_LATEST
SPAWN_BUCKETS_S = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CYCLE_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class AdmissionFigures(Protocol):
    """The governor's: the fleet's capacity and this process's admission counts."""

    @property
    def fleet_capacity(self) -> int: ...

    @property
    def admissions(self) -> int: ...

    @property
    def denials(self) -> int: ...


class LoopFigures(Protocol):
    """A monitor loop's counts (this conductor's monitor, or an observer's stand-in)."""

    @property
    def running(self) -> bool: ...

    @property
    def cycles(self) -> int: ...

    @property
    def errors(self) -> int: ...

    @property
    def last_cycle_ms(self) -> float: ...


class DropFigures(Protocol):
    """The faces' bus: events dropped for slow subscribers."""

    @property
    def dropped(self) -> int: ...


class ProcessFigures(Protocol):
    """What the figures read of this process (a conductor, an observer): the governor's and
    the monitor's counts (the monitor is None until started), the bus's drops, and the
    histograms (None where nothing observes them)."""

    @property
    def governor(self) -> AdmissionFigures: ...

    @property
    def monitor(self) -> LoopFigures | None: ...

    @property
    def bus(self) -> DropFigures: ...

    @property
    def telemetry(self) -> Telemetry | None: ...


class Telemetry:
    """This process's observations, each a prometheus_client Histogram kept off the global
    registry (a test process holds many conductors)."""

    def __init__(self) -> None:
        self.monitor_cycle = Histogram("fleet_monitor_cycle_seconds", "duration of a monitor cycle (this conductor)",
                                       buckets=CYCLE_BUCKETS_S, registry=None)
        self.outbox_lag = Histogram("fleet_outbox_delivery_lag_seconds",
                                    "time from an outbox event's commit to its delivery to every sink (this process)",
                                    buckets=LAG_BUCKETS_S, registry=None)

    def collect(self) -> Iterator[Metric]:
        for histogram in (self.monitor_cycle, self.outbox_lag):
            for family in histogram.collect():
                # `_created` is OpenMetrics' series; in the 0.0.4 text it is one more gauge family
                family.samples = [s for s in family.samples if not s.name.endswith("_created")]
                yield family


async def collect(db: Database, *, process: ProcessFigures | None = None,
                  breakers: BreakerFigures | None = None) -> dict[str, float]:
    """The figures the faces' health panels show (one flat dict)."""
    if breakers is not None:
        await breakers.refresh()
    async with db.system(kind="read") as conn:
        f = await health_store.fleet_figures(conn, since=datetime.now(UTC) - timedelta(hours=1))
    governor = process.governor if process is not None else None
    monitor = process.monitor if process is not None else None
    return {
        "active_agents": f["live_agents"],
        "total_spawns": f["total_spawns"],
        "total_failures": f["failed_attempts"],
        "retry_rate": round(f["retried_tasks"] / f["total_tasks"], 4) if f["total_tasks"] else 0.0,
        "avg_spawn_duration_ms": round(f["avg_spawn_duration_ms"], 1),
        "governor_denial_count": governor.denials if governor is not None else 0,
        "governor_admissions_total": governor.admissions if governor is not None else 0,
        "monitor_cycles": monitor.cycles if monitor is not None else 0,
        "monitor_errors": monitor.errors if monitor is not None else 0,
        "monitor_last_cycle_ms": round(monitor.last_cycle_ms, 1) if monitor is not None else 0.0,
        "outbox_pending": f["outbox_pending"],
        "outbox_lag_seconds": round(f["outbox_lag_s"], 3),
        "dlq_depth": f["dlq_depth"],
        "spawn_queue_depth": f["spawn_queue_depth"],
        "open_breakers": len(breakers.open_names()) if breakers is not None else 0,
        "capacity": governor.fleet_capacity if governor is not None else 0,
        "monitor_running": 1 if monitor is not None and monitor.running else 0,
        "bus_dropped_events_total": process.bus.dropped if process is not None else 0,
    }


async def exposition(db: Database, *, process: ProcessFigures | None = None,
                     breakers: BreakerFigures | None = None) -> bytes:
    """Prometheus text exposition (format 0.0.4, CONTENT_TYPE) of the fleet and this process."""
    async with db.system(kind="read") as conn:
        figures = await health_store.fleet_figures(conn, since=datetime.now(UTC) - timedelta(hours=1))
        series = await health_store.metric_series(conn, spawn_buckets=SPAWN_BUCKETS_S)
    families = list(_fleet_families(figures, series))
    families += list(_process_families(process, breakers))
    telemetry = process.telemetry if process is not None else None
    if telemetry is not None:
        families += list(telemetry.collect())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


class _Snapshot:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def _fleet_families(f: dict[str, Any], series: dict[str, list[dict[str, Any]]]) -> Iterator[Metric]:
    live = GaugeMetricFamily("fleet_active_agents", "live (non-terminal) tasks by their operator's tier",
                             labels=["tier"])
    by_status = GaugeMetricFamily("fleet_tasks", "tasks in the registry by status", labels=["status"])
    live_by_tier: dict[str, int] = {str(tier): 0 for tier in Tier}
    status_counts: dict[str, int] = {}
    for row in series["tasks"]:
        status_counts[row["status"]] = status_counts.get(row["status"], 0) + row["n"]
        if row["status"] not in {str(s) for s in TERMINAL_STATUSES}:
            live_by_tier[row["tier"]] = live_by_tier.get(row["tier"], 0) + row["n"]
    for tier, n in sorted(live_by_tier.items()):
        live.add_metric([tier], n)
    for status, n in sorted(status_counts.items()):
        by_status.add_metric([status], n)
    yield live
    yield by_status

    runs = CounterMetricFamily("fleet_agent_runs", "agent runs started, by agent and model", labels=["agent", "model"])
    run_failures = CounterMetricFamily("fleet_agent_run_failures", "agent runs that ended in a failure",
                                       labels=["agent", "model"])
    for row in series["runs"]:
        runs.add_metric([row["agent"], row["model"]], row["n"])
        run_failures.add_metric([row["agent"], row["model"]], row["failed"])
    yield runs
    yield run_failures

    failures = CounterMetricFamily("fleet_task_failures", "failed attempts: every move of a task into failed "
                                   "(spawn, agent, CI), by the task's agent", labels=["agent"])
    for row in series["failed_attempts"]:
        failures.add_metric([row["agent"]], row["n"])
    yield failures

    spawn = HistogramMetricFamily("fleet_spawn_to_running_seconds", "time an attempt takes from spawning to running",
                                  labels=["agent"])
    for row in series["spawn_to_running"]:
        buckets = [(_le(b), n) for b, n in zip(SPAWN_BUCKETS_S, row["buckets"])] + [("+Inf", row["count"])]
        spawn.add_metric([row["agent"]], buckets, row["sum"])
    yield spawn

    retried = f["retried_tasks"] / f["total_tasks"] if f["total_tasks"] else 0.0
    yield GaugeMetricFamily("fleet_retry_rate", "share of tasks retried at least once", value=retried)
    yield GaugeMetricFamily("fleet_outbox_pending", "outbox events not yet delivered", value=f["outbox_pending"])
    yield GaugeMetricFamily("fleet_outbox_oldest_pending_seconds", "age of the oldest undelivered outbox event",
                            value=f["outbox_lag_s"])
    yield GaugeMetricFamily("fleet_dlq_depth", "open dead letters", value=f["dlq_depth"])
    yield GaugeMetricFamily("fleet_spawn_queue_depth", "spawn requests waiting for capacity",
                            value=f["spawn_queue_depth"])


def _process_families(process: ProcessFigures | None, breakers: BreakerFigures | None) -> Iterator[Metric]:
    governor = process.governor if process is not None else None
    monitor = process.monitor if process is not None else None
    if governor is not None:
        yield GaugeMetricFamily("fleet_capacity", "fleet-wide live task capacity", value=governor.fleet_capacity)
        yield CounterMetricFamily("fleet_governor_admissions", "spawns admitted by the governor (this conductor)",
                                  value=governor.admissions)
        yield CounterMetricFamily("fleet_governor_denials", "spawns refused by the governor (this conductor)",
                                  value=governor.denials)
    yield GaugeMetricFamily("fleet_monitor_running", "1 while this conductor's monitor loop runs",
                            value=1 if monitor is not None and monitor.running else 0)
    if monitor is not None:
        yield CounterMetricFamily("fleet_monitor_cycles", "monitor cycles run (this conductor)", value=monitor.cycles)
        yield CounterMetricFamily("fleet_monitor_errors", "monitor cycles that failed or overran (this conductor)",
                                  value=monitor.errors)
    if breakers is not None:
        yield GaugeMetricFamily("fleet_open_breakers", "circuit breakers currently open",
                                value=len(breakers.open_names()))
    if process is not None:
        yield CounterMetricFamily("fleet_bus_dropped_events", "events dropped for slow subscribers (this process)",
                                  value=process.bus.dropped)


def _le(bound: float) -> str:
    return repr(float(bound))
