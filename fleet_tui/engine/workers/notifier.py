"""The notification worker: delivers pending fleet_notifications rows through the
configured channels (Discord, Telegram; the CLI line when none is configured or all
failed), each channel on its own (infra.channels.dispatch.deliver).

The row exists before any attempt (recorded by the engine); before each attempt the
worker counts it on the row (attempts + 1, updated_at, lease renewed), then sets the row
sent or failed with the channels' own error text (already scrubbed of URLs and tokens).
Rows are leased (FOR UPDATE SKIP LOCKED), so several conductors' workers never send one
twice at the same time and a dead worker's rows are taken over. Delivery is at least once:
receivers deduplicate on event_id."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Awaitable, Callable, Sequence

from fleet_tui.config import NotificationSettings
from fleet_tui.engine.kit.polling import PollingWorker
from fleet_tui.store import notifications as notification_store
from fleet_tui.store.db import Database
from fleet_tui.store.notifications import NotificationRow

if TYPE_CHECKING:  # infra.channels imports httpx, which imports rich: only when delivering
    from fleet_tui.infra.channels.base import Channel
    from fleet_tui.infra.channels.dispatch import DeliveryOutcome

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
WAKE_CHANNEL = "fleet_notifications_wake"
LEASE_S = 120.0
CONCURRENCY = 8


@dataclass
class NotifierStats:
    sent: int = 0
    failed: int = 0
    errors: int = 0


def event_id_for(row: NotificationRow) -> str:
    return f"notification-{row.id}"


class NotificationWorker(PollingWorker):
    wake_channel = WAKE_CHANNEL
    wake_name = "fleet-notifier"

    def __init__(self, db: Database, settings: NotificationSettings, *,
                 channels: Sequence[Channel] | None = None, fallback: Channel | None = None,
                 worker_id: str | None = None, lease_s: float = LEASE_S, poll_s: float = 1.0,
                 batch: int = 20, wake_url: str | None = None, sleep: Sleep = asyncio.sleep) -> None:
        super().__init__()
        self.db = db
        self.settings = settings
        self._channels = list(channels) if channels is not None else None
        self._fallback = fallback
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._batch = batch
        self._wake_url = wake_url
        self._sleep = sleep
        self._client: Any = None
        self.stats = NotifierStats()

    def channels(self) -> list[Channel]:
        if self._channels is None:
            import httpx  # lazily: httpx imports rich, the engine must not at import time

            from fleet_tui.infra.channels.dispatch import build_channels

            self._client = httpx.AsyncClient()
            self._channels = build_channels(self.settings, self._client)
        return self._channels

    def fallback(self) -> Channel:
        if self._fallback is None:
            from fleet_tui.infra.channels.cli import CliChannel

            self._fallback = CliChannel()
        return self._fallback

    # --- one round ------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim due rows and deliver them concurrently; returns how many were settled."""
        async with self.db.system() as conn:
            rows = await notification_store.claim_pending(conn, self.worker_id, limit=self._batch,
                                                          lease_s=self._lease_s)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(row: NotificationRow) -> bool:
            async with gate:
                return await self._deliver(row)

        results = await asyncio.gather(*(one(row) for row in rows))
        return sum(results)

    async def drain(self, *, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            settled = await self.run_once()
            if not settled:
                break
            total += settled
        return total

    def _channels_for(self, row: NotificationRow) -> list[Channel]:
        channels = self.channels()
        if row.channel == "all":
            return channels
        chosen = [c for c in channels if c.name == row.channel]
        return chosen or [self.fallback()]  # a channel no longer configured: say it on the CLI

    async def _deliver(self, row: NotificationRow) -> bool:
        from fleet_tui.infra.channels.base import Notification
        from fleet_tui.infra.channels.dispatch import deliver

        channels = self._channels_for(row)
        notification = Notification(event_id=event_id_for(row), type=row.type, task_id=row.task_id,
                                    summary=row.summary)
        budget = self.settings.max_attempts * len(channels)
        if row.attempts >= budget:
            # earlier workers spent the whole budget and died before settling: stop here,
            # but still leave the operator the CLI line
            await self.fallback().send(notification)
            return await self._settle(row, {}, given_up=f"{row.attempts} attempts made by workers that died")

        async def record_attempt(channel: str, attempt: int) -> None:
            async with self.db.system() as conn:
                await notification_store.count_attempt(conn, row.id, self.worker_id, lease_s=self._lease_s)

        outcomes = await deliver(
            notification, channels, record_attempt=record_attempt, sleep=self._sleep,
            base_s=self.settings.backoff_base_s, cap_s=self.settings.backoff_cap_s,
            max_attempts=self.settings.max_attempts, fallback=self.fallback())
        return await self._settle(row, outcomes)

    async def _settle(self, row: NotificationRow, outcomes: dict[str, DeliveryOutcome],
                      given_up: str | None = None) -> bool:
        failed = [o for o in outcomes.values() if not o.delivered]
        sent = given_up is None and not failed
        last_error = given_up or ("; ".join(f"{o.last_error}" for o in failed)[:1000] if failed else None)
        deliveries = {o.channel: {"delivered": o.delivered, "attempts": o.attempts,
                                  "cli_fallback": o.fallback_written} for o in outcomes.values()}
        async with self.db.system() as conn:
            settled = await notification_store.settle(conn, row.id, self.worker_id, sent=sent,
                                                      last_error=last_error, deliveries=deliveries)
        if not settled:
            log.warning("notification %d: lease lost before settling", row.id)
            return False
        if sent:
            self.stats.sent += 1
        else:
            self.stats.failed += 1
            log.warning("notification %d (%s) failed: %s", row.id, row.type, last_error)
        return True

    # --- the loop -------------------------------------------------------------------------

    @property
    def worker_name(self) -> str:
        return f"notifier-{self.worker_id}"

    @property
    def poll_s(self) -> float:
        return self._poll_s

    async def stop(self, timeout_s: float = 10.0) -> None:
        await super().stop(timeout_s)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
