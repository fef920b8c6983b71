"""Log records batched into fleet_logs (stdout keeps the JSON formatter of ledger/tracing.py), each
with its trace id, span id and parent span; and the retention cleanup of logs, health
snapshots and dedup keys, run on a schedule."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime, timedelta, UTC
from typing import Any

from fleet_tui.engine.kit.loops import PeriodicLoop
from fleet_tui.engine.ledger import tracing
from fleet_tui.store import health as health_store
from fleet_tui.store import logs as log_store
from fleet_tui.store import spawn_queue as queue_store
from fleet_tui.store.db import Database

log = logging.getLogger(__name__)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
_COLUMNS_FROM_EXTRA = ("operator_id", "task_id", "span_id", "parent_span_id")


class DatabaseLogHandler(logging.Handler):
    """Buffers records (bounded: the oldest are dropped and counted); flush() writes them in
    one batch. Never blocks the logging call on the database."""

    def __init__(self, db: Database, *, capacity: int = 10_000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._db = db
        self._buffer: deque[dict[str, Any]] = deque(maxlen=capacity)
        self.dropped = 0
        self.written = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("asyncpg"):
            return  # the sink's own driver must not feed the sink
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage()[:10_000],
            "trace_id": extra.pop("trace_id", None) or tracing.current_trace_id(),
            "span_id": extra.get("span_id") or tracing._span_id.get(),
        }
        for name in _COLUMNS_FROM_EXTRA:
            if name in extra:
                entry[name] = extra.pop(name)
        entry["fields"] = {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                           for k, v in extra.items()}
        self._buffer.append(entry)

    async def flush_to_db(self) -> int:
        batch = list(self._buffer)
        self._buffer.clear()
        if not batch:
            return 0
        async with self._db.system() as conn:
            await log_store.insert_many(conn, batch)
        self.written += len(batch)
        return len(batch)

    async def run(self, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        """Flush every interval until stop is set, then a last time."""
        await PeriodicLoop(self._flush_step, name="fleet-logsink", interval_s=interval_s,
                           stop_event=stop, delay_first=True).run()
        await self._flush_step()

    async def _flush_step(self) -> None:
        try:
            await self.flush_to_db()
        except Exception as exc:  # a database hiccup must not kill the sink
            _flush_failed(exc)


def _flush_failed(exc: Exception) -> None:
    print(f"fleet log sink: flush failed: {exc}")  # not logged: the log is what failed to flush


async def cleanup(db: Database, *, retention: timedelta, now: datetime | None = None) -> dict[str, int]:
    """Delete logs, health snapshots and dedup keys older than the retention."""
    before = (now or datetime.now(UTC)) - retention
    async with db.system(kind="admin") as conn:
        return {"logs": await log_store.delete_before(conn, before),
                "health_snapshots": await health_store.delete_before(conn, before),
                "dedup_keys": await queue_store.forget_keys_before(conn, before)}


async def run_retention(db: Database, stop: asyncio.Event, *, retention: timedelta = timedelta(days=14),
                        every: timedelta = timedelta(hours=1)) -> None:
    async def once() -> None:
        removed = await cleanup(db, retention=retention)
        log.info("retention cleanup", extra={"removed": removed})

    await PeriodicLoop(once, name="fleet-retention", interval_s=every.total_seconds(), stop_event=stop).run()
