"""The outbox relay: reads fleet_outbox in commit order, delivers each event to every sink
(NOTIFY for faces, NATS, webhooks, the terminal-notification guard), marks it processed.

At least once. A claim leases rows (FOR UPDATE SKIP LOCKED, so several conductors' relays
share the work) and counts a started attempt in the same committed transaction, before
any delivery; settling counts a finished one. A row that keeps failing is retried with
capped exponential backoff, skipping sinks that already took it, and parked after
max_attempts. A row whose attempts keep starting without finishing (it kills the relay,
or the relay dies while holding it) is retried alone, so it cannot drag its batch-mates
along, and parked after crash_limit such starts. Parked rows go to `on_park` (the
dead-letter queue's hook). Receivers deduplicate on event_id."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, UTC
from typing import Any, Protocol
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fleet_tui.config import OutboxSettings
from fleet_tui.engine.kit.polling import PollingWorker
from fleet_tui.domain.retry import backoff_delay
from fleet_tui.domain.status import TERMINAL_STATUSES, TaskStatus
from fleet_tui.store import notifications as notification_store
from fleet_tui.store import outbox as outbox_store
from fleet_tui.store.db import Database
from fleet_tui.store.outbox import OutboxRow, Settlement

log = logging.getLogger(__name__)

OnPark = Callable[[OutboxRow, str], Awaitable[None]]
WAKE_CHANNEL = "fleet_outbox_wake"
ERROR_MAX = 500


class Sink(Protocol):
    name: str

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Deliver the envelopes; return {event_id: error} for the ones that failed."""
        ...

    async def close(self) -> None: ...


class PgNotifySink:
    """NOTIFY <channel> with outbox ids only (faces read the rows themselves, from their
    cursor, under their own row-level security)."""

    name = "pg_notify"

    def __init__(self, db: Database, channel: str = "fleet_events") -> None:
        self._db = db
        self.channel = channel

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        try:
            async with self._db.system() as conn:
                await outbox_store.notify(conn, self.channel, [int(e["id"]) for e in events])
        except Exception as exc:
            return {e["event_id"]: f"pg_notify: {type(exc).__name__}" for e in events}
        return {}

    async def close(self) -> None:
        return None


class TerminalNotificationSink:
    """INV-018's guard: a terminal task event records the task's terminal notification
    (deduplicated per task), even when the conductor died between the transition's commit
    and its own notify."""

    name = "terminal_notifications"

    def __init__(self, db: Database) -> None:
        self._db = db

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        from fleet_tui.domain.status import TERMINAL_NOTIFICATION

        terminal = [(e, status) for e in events if (status := _terminal_status(e["type"])) is not None]
        if not terminal:
            return {}
        try:
            async with self._db.system() as conn:
                for event, status in terminal:
                    kind, summary = TERMINAL_NOTIFICATION[status]
                    await notification_store.record_terminal(
                        conn, task_id=event["task_id"], operator_id=event["operator_id"],
                        type=kind, summary=summary)
        except Exception as exc:
            return {e["event_id"]: f"terminal_notifications: {type(exc).__name__}" for e, _ in terminal}
        return {}

    async def close(self) -> None:
        return None


def _terminal_status(event_type: str) -> TaskStatus | None:
    if not event_type.startswith("task."):
        return None
    try:
        status = TaskStatus(event_type.removeprefix("task."))
    except ValueError:
        return None
    return status if status in TERMINAL_STATUSES else None


@dataclass
class RelayStats:
    batches: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    parked: int = 0
    errors: int = 0
    last_batch_ms: float = 0.0


class OutboxRelay(PollingWorker):
    wake_channel = WAKE_CHANNEL
    wake_name = "fleet-outbox-relay"

    def __init__(self, db: Database, settings: OutboxSettings, sinks: Sequence[Sink], *,
                 relay_id: str | None = None, on_park: OnPark | None = None,
                 wake_url: str | None = None, observe_lag: Callable[[float], None] | None = None) -> None:
        super().__init__()
        self.db = db
        self.settings = settings
        self.sinks = list(sinks)
        self.relay_id = relay_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.on_park = on_park
        self.stats = RelayStats()
        self._wake_url = wake_url
        self._observe_lag = observe_lag  # seconds from commit to delivery, per delivered event
        self._held_rounds = 0  # idle rounds in a row that found rows held back above the horizon

    # --- one round ------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Park crashers, retry one suspect alone if any, else one batch. Returns the number
        of rows settled (0: nothing was due)."""
        await self._park_crashers()
        suspects = await self._claim(suspects=True)
        if suspects:
            return await self._deliver(suspects)
        batch = await self._claim(suspects=False)
        if batch:
            self._held_rounds = 0
            return await self._deliver(batch)
        async with self.db.system(kind="read") as conn:
            held = await outbox_store.held_back(conn)
        self._held_rounds = self._held_rounds + 1 if held else 0
        return 0

    async def drain(self, *, timeout_s: float = 60.0) -> int:
        """run_once until no row is due; returns the rows settled. A committed row may wait
        a moment for the horizon (any open transaction in the cluster holds it)."""
        total = 0
        deadline = time.monotonic() + timeout_s
        while True:
            settled = await self.run_once()
            total += settled
            if settled:
                continue
            async with self.db.system(kind="read") as conn:
                due = await outbox_store.due_count(conn)
            if not due or time.monotonic() > deadline:
                return total
            await asyncio.sleep(0.02)

    async def _park_crashers(self) -> None:
        async with self.db.system() as conn:
            parked = await outbox_store.park_crashers(conn, crash_limit=self.settings.crash_limit)
        for row in parked:
            await self._parked(row, f"delivery started {row.attempts_started} times without finishing")

    async def _claim(self, *, suspects: bool) -> list[OutboxRow]:
        async with self.db.system() as conn:
            return await outbox_store.claim(
                conn, self.relay_id, limit=1 if suspects else self.settings.batch_size,
                lease_s=self.settings.lease_s, suspects=suspects)

    async def _deliver(self, rows: list[OutboxRow]) -> int:
        started = time.monotonic()
        envelopes = {row.id: row.envelope() for row in rows}
        by_event = {row.event_id: row for row in rows}
        errors: dict[int, list[str]] = {row.id: [] for row in rows}
        done: dict[int, list[str]] = {row.id: [] for row in rows}

        async def to_sink(sink: Sink) -> None:
            todo = [envelopes[row.id] for row in rows if sink.name not in row.delivered_to]
            if not todo:
                return
            try:
                failures = await asyncio.wait_for(sink.deliver(todo), self.settings.lease_s * 0.8)
            except Exception as exc:  # a sink bug or timeout fails that sink's share only
                failures = {e["event_id"]: f"{sink.name}: {type(exc).__name__}" for e in todo}
            for envelope in todo:
                row = by_event[envelope["event_id"]]
                if envelope["event_id"] in failures:
                    errors[row.id].append(failures[envelope["event_id"]][:ERROR_MAX])
                else:
                    done[row.id].append(sink.name)

        await asyncio.gather(*(to_sink(sink) for sink in self.sinks))
        settlements = [self._settlement(row, done[row.id], errors[row.id]) for row in rows]
        async with self.db.system() as conn:
            settled = await outbox_store.settle(conn, self.relay_id, settlements)
        for s, row in zip(settlements, rows):
            if row.id not in settled:
                log.warning("outbox row %d: lease lost before settling; another relay has it", row.id)
            elif s.error is None:
                self.stats.delivered += 1
                if self._observe_lag is not None:
                    self._observe_lag(max(0.0, (datetime.now(UTC) - row.created_at).total_seconds()))
            else:
                self.stats.failed_attempts += 1
                if s.park:
                    await self._parked(row, s.error)
        self.stats.batches += 1
        self.stats.last_batch_ms = (time.monotonic() - started) * 1000
        return len(settled)

    def _settlement(self, row: OutboxRow, done: list[str], errors: list[str]) -> Settlement:
        if not errors:
            return Settlement(row.id, delivered_to=done)
        attempt = row.attempts_started  # this attempt's number, from 1
        delay = backoff_delay(attempt - 1, base_s=self.settings.backoff_base_s,
                              cap_s=self.settings.backoff_cap_s, jitter_s=0.0)
        return Settlement(row.id, delivered_to=done, error="; ".join(errors)[:ERROR_MAX],
                          retry_in_s=delay, park=attempt >= self.settings.max_attempts)

    async def _parked(self, row: OutboxRow, reason: str) -> None:
        self.stats.parked += 1
        log.error("outbox event %s (%s, row %d) parked: %s", row.event_id, row.event_type, row.id, reason)
        if self.on_park is not None:
            try:
                await self.on_park(row, reason)
            except Exception:
                log.exception("on_park hook failed for outbox row %d", row.id)

    # --- the loop -------------------------------------------------------------------------

    @property
    def worker_name(self) -> str:
        return f"outbox-relay-{self.relay_id}"

    @property
    def poll_s(self) -> float:
        return self.settings.poll_s

    def idle_pause_s(self) -> float:
        # rows held back by an open transaction: no NOTIFY comes when it ends, look again soon
        return outbox_store.next_look_s(self._held_rounds, self.poll_s)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the round in hand (its rows settle), then stop and close the sinks."""
        await super().stop(timeout_s)
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:
                log.exception("closing sink %s failed", sink.name)


def build_sinks(db: Database, settings: OutboxSettings) -> list[Sink]:
    """pg NOTIFY and the terminal-notification guard always; NATS and webhooks when configured."""
    sinks: list[Sink] = [PgNotifySink(db, settings.notify_channel), TerminalNotificationSink(db)]
    if settings.nats_url:
        from fleet_tui.infra.nats_sink import NatsSink

        sinks.append(NatsSink(settings.nats_url.get_secret_value(), stream=settings.nats_stream))
    for url in settings.webhook_urls:
        from fleet_tui.infra.webhook_sink import WebhookSink

        sinks.append(WebhookSink(url.get_secret_value(), secrets=[k.get_secret_value() for k in settings.webhook_secret]))
    return sinks
