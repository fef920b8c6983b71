"""The scheduled side of operations, beside a conductor: dead letters retried when due,
health snapshots with threshold alerts, structured logs batched into fleet_logs, and the
retention cleanup of old logs and snapshots."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from fleet_tui.engine.ops.health import HealthMonitor
from fleet_tui.engine.ops.logsink import DatabaseLogHandler, run_retention

if TYPE_CHECKING:
    from fleet_tui.engine.conductor import Conductor

log = logging.getLogger(__name__)


def attach_log_sink(conductor: Conductor) -> DatabaseLogHandler:
    """From now on, log records are buffered for fleet_logs (run_ops flushes them)."""
    handler = DatabaseLogHandler(conductor.parts.db)
    logging.getLogger().addHandler(handler)
    return handler


async def run_ops(conductor: Conductor, stop: asyncio.Event, handler: DatabaseLogHandler) -> None:
    db = conductor.parts.db
    interval = conductor.settings.monitor.ops_interval_s
    health = HealthMonitor(db, breakers=conductor.router.breakers)
    side = [asyncio.create_task(handler.run(stop), name="fleet-logsink"),
            asyncio.create_task(run_retention(db, stop, retention=timedelta(
                days=conductor.settings.monitor.log_retention_days)), name="fleet-retention")]
    try:
        while not stop.is_set():
            for name, step in (("dead letters", conductor.router.dlq.retry_due), ("health", health.snapshot)):
                try:
                    await step()
                except Exception:  # one failing duty must not stop the others
                    log.exception("scheduled %s failed", name)
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
    finally:
        stop.set()
        await asyncio.gather(*side, return_exceptions=True)
        logging.getLogger().removeHandler(handler)
