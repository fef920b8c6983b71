"""The scheduled side of operations, beside a conductor: dead letters retried when due,
health snapshots with threshold alerts, structured logs batched into fleet_logs, the
retention cleanup of old logs and snapshots, and the disk sweep of finished tasks' worktrees."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from collections.abc import Awaitable, Callable

from fleet_tui.engine.kit.loops import PeriodicLoop
from fleet_tui.engine.kit.supervisor import Supervisor
from fleet_tui.engine.ops.health import BreakerFigures, HealthMonitor
from fleet_tui.engine.ops.logsink import DatabaseLogHandler, run_retention
from fleet_tui.store.db import Database

log = logging.getLogger(__name__)


def attach_log_sink(db: Database) -> DatabaseLogHandler:
    """From now on, log records are buffered for fleet_logs (run_ops flushes them)."""
    handler = DatabaseLogHandler(db)
    logging.getLogger().addHandler(handler)
    return handler


async def run_ops(*, db: Database, stop: asyncio.Event, handler: DatabaseLogHandler, interval_s: float,
                  log_retention_days: float, breakers: BreakerFigures, retry_dead_letters: Callable[[], Awaitable[object]],
                  sweep: Callable[[], Awaitable[object]] | None = None, sweep_interval_s: float = 600.0) -> None:
    """Until stop: dead letters retried when due and a health snapshot every interval_s; log
    records flushed and old logs removed beside them; the disk sweep (when given) every
    sweep_interval_s, the first one interval after the start. breakers: the event router's
    (health counts the open ones)."""
    health = HealthMonitor(db, breakers=breakers)
    side = Supervisor("ops")
    side.start(handler.run(stop), name="fleet-logsink")
    side.start(run_retention(db, stop, retention=timedelta(days=log_retention_days)), name="fleet-retention")
    if sweep is not None:
        async def sweep_step() -> None:
            await sweep()

        side.start(PeriodicLoop(sweep_step, name="fleet-sweep", interval_s=sweep_interval_s, stop_event=stop,
                                delay_first=True).run(), name="fleet-sweep")

    async def duties() -> None:
        for name, step in (("dead letters", retry_dead_letters), ("health", health.snapshot)):
            try:
                await step()
            except Exception:  # one failing duty must not stop the others
                log.exception("scheduled %s failed", name)

    try:
        await PeriodicLoop(duties, name="fleet-ops", interval_s=interval_s, stop_event=stop).run()
    finally:
        stop.set()
        await side.shutdown(timeout_s=30)
        logging.getLogger().removeHandler(handler)
