"""Health snapshots (live agents, failure rate, DLQ depth, open breakers, outbox lag), kept
in fleet_health_snapshots, and alerts when a threshold is crossed: one health_alert
notification per crossing (not per snapshot), another when it clears and crosses again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from typing import Any, Protocol
from collections.abc import Awaitable, Callable

from fleet_tui.store import health as health_store
from fleet_tui.store import notifications as notification_store
from fleet_tui.store.db import Database

Alert = Callable[[str, dict[str, Any]], Awaitable[None]]
ALERT_OPERATOR = "system"


class BreakerFigures(Protocol):
    """The event router's circuit breakers, as health and metrics read them: refreshed from
    the fleet, then the open ones named."""

    async def refresh(self) -> None: ...

    def open_names(self) -> list[str]: ...


@dataclass
class HealthThresholds:
    failure_rate: float = 0.5  # of the last hour's agent runs
    dlq_depth: int = 10
    open_breakers: int = 1
    outbox_lag_s: float = 300.0
    live_agents: int | None = None  # e.g. the fleet capacity


@dataclass
class HealthSnapshot:
    live_agents: int
    failure_rate: float
    dlq_depth: int
    open_breakers: list[str]
    outbox_lag_s: float
    alerts: list[dict[str, Any]] = field(default_factory=list)
    id: int | None = None


class HealthMonitor:
    def __init__(self, db: Database, *, thresholds: HealthThresholds | None = None,
                 breakers: BreakerFigures | None = None,
                 alert: Alert | None = None, window: timedelta = timedelta(hours=1)) -> None:
        self._db = db
        self.thresholds = thresholds or HealthThresholds()
        self._breakers = breakers
        self._alert = alert or self._record_alert
        self._window = window
        self._crossed: set[str] = set()

    async def snapshot(self) -> HealthSnapshot:
        if self._breakers is not None:
            await self._breakers.refresh()
        async with self._db.system(kind="read") as conn:
            f = await health_store.fleet_figures(conn, since=datetime.now(UTC) - self._window)
        snap = HealthSnapshot(
            live_agents=f["live_agents"],
            failure_rate=round(f["recent_failures"] / f["recent_runs"], 4) if f["recent_runs"] else 0.0,
            dlq_depth=f["dlq_depth"],
            open_breakers=self._breakers.open_names() if self._breakers is not None else [],
            outbox_lag_s=round(f["outbox_lag_s"], 3))
        over = self._over(snap)
        snap.alerts = [{"check": name, "value": value, "threshold": limit} for name, (value, limit) in over.items()]
        async with self._db.system() as conn:
            snap.id = await health_store.insert_snapshot(
                conn, live_agents=snap.live_agents, failure_rate=snap.failure_rate, dlq_depth=snap.dlq_depth,
                open_breakers=snap.open_breakers, outbox_lag_s=snap.outbox_lag_s, alerts=snap.alerts)
        for name in sorted(set(over) - self._crossed):
            value, limit = over[name]
            await self._alert(f"health: {name} is {value} (threshold {limit})",
                              {"check": name, "value": value, "threshold": limit, "snapshot_id": snap.id})
        self._crossed = set(over)
        return snap

    def _over(self, snap: HealthSnapshot) -> dict[str, tuple[Any, Any]]:
        t = self.thresholds
        checks: dict[str, tuple[Any, Any, bool]] = {
            "failure_rate": (snap.failure_rate, t.failure_rate, snap.failure_rate >= t.failure_rate),
            "dlq_depth": (snap.dlq_depth, t.dlq_depth, snap.dlq_depth >= t.dlq_depth),
            "open_breakers": (len(snap.open_breakers), t.open_breakers, len(snap.open_breakers) >= t.open_breakers),
            "outbox_lag_s": (snap.outbox_lag_s, t.outbox_lag_s, snap.outbox_lag_s >= t.outbox_lag_s),
        }
        if t.live_agents is not None:
            checks["live_agents"] = (snap.live_agents, t.live_agents, snap.live_agents >= t.live_agents)
        return {name: (value, limit) for name, (value, limit, bad) in checks.items() if bad}

    async def _record_alert(self, summary: str, data: dict[str, Any]) -> None:
        """A health_alert notification (delivered by the relay like any other)."""
        async with self._db.system() as conn:
            await notification_store.record(conn, task_id=None, operator_id=ALERT_OPERATOR,
                                            type="health_alert", summary=summary)

    async def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        async with self._db.system(kind="read") as conn:
            return await health_store.latest(conn, limit)
