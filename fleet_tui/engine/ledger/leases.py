"""The lease under which the current code writes. The monitor binds it around each task's
check (asyncio copies it into tasks started there, e.g. a relaunch), and every registry
write the engine makes carries it, so a conductor that lost the lease is fenced off."""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import time
import uuid
from contextlib import contextmanager
from typing import Any
from collections.abc import Iterator

from fleet_tui.domain.models import Lease
from fleet_tui.engine.kit.loops import PeriodicLoop

log = logging.getLogger(__name__)
held_lease: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("held_lease", default=None)


@contextmanager
def holding(lease: Lease | None) -> Iterator[None]:
    token = held_lease.set(lease)
    try:
        yield
    finally:
        held_lease.reset(token)


async def hand_back(db: Any, conductor_id: str) -> None:
    """On a clean stop: other conductors may take our tasks at once, not on expiry."""
    from fleet_tui.store import leases as lease_store

    try:
        await lease_store.release(db, conductor_id)
    except Exception as exc:  # the database may be gone; the leases then simply expire
        log.warning("could not release leases: %s", exc)


def new_conductor_id() -> str:
    """One id per boot: host-pid-random, so a restarted conductor is a new one."""
    host = "".join(ch for ch in socket.gethostname().lower() if ch.isalnum())[:20] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class SpawnOwnership:
    """The lease a spawn saga holds from admission to `running`: renewed in the background
    every third of its time to live (slow steps: a long setup command), checked before each
    step, and asked once more before compensating: a saga whose task was taken over must not
    undo what the new owner adopted."""

    def __init__(self, db: Any, task_id: str, lease: Lease, ttl_s: float,
                 extended_at: float | None = None) -> None:
        self._db = db
        self.task_id = task_id
        self.lease = lease
        self.ttl_s = ttl_s
        self.lost = False
        # time.monotonic() just before the request that last extended the lease (the admission
        # that granted it, a renewal): nobody may take it over before ttl_s after that
        self._extended_at = extended_at
        self._renewer: PeriodicLoop | None = None

    async def renew(self) -> bool:
        """True while the lease is ours (and extended); False once taken over. A database
        that cannot answer raises: the caller must then assume it is not ours."""
        from fleet_tui.store import leases as lease_store

        sent = time.monotonic()
        if not self.lost and not await lease_store.renew(self._db, self.task_id, self.lease, self.ttl_s):
            self.lost = True
            log.warning("spawn of %s lost its lease (%s, epoch %d) to another conductor",
                        self.task_id, self.lease.owner, self.lease.epoch)
        if not self.lost:
            self._extended_at = sent
        return not self.lost

    async def confirm(self) -> bool:
        """renew(), without a round trip while the last extension is younger than a third
        of the lease's time to live: it cannot have expired, so nobody can have taken it."""
        if not self.lost and self._extended_at is not None and time.monotonic() - self._extended_at < self.ttl_s / 3:
            return True
        return await self.renew()

    async def _keep(self) -> None:
        assert self._renewer is not None
        try:
            if not await self.renew():
                self._renewer.halt()  # lost: nothing left to keep
        except Exception as exc:  # the database away: try again; expiry decides meanwhile
            log.warning("could not renew the spawn lease of %s: %s", self.task_id, type(exc).__name__)

    async def __aenter__(self) -> SpawnOwnership:
        await self.confirm()  # it may have lapsed since it was granted (a busy host)
        self._renewer = PeriodicLoop(self._keep, name=f"spawn-lease-{self.task_id}",
                                     interval_s=self.ttl_s / 3, delay_first=True)
        self._renewer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._renewer is not None:
            await self._renewer.stop(timeout_s=0)  # a renewal in flight is cancelled, as before
