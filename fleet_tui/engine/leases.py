"""The lease under which the current code writes. The monitor binds it around each task's
check (asyncio copies it into tasks started there, e.g. a relaunch), and every registry
write the engine makes carries it, so a conductor that lost the lease is fenced off."""

from __future__ import annotations

import contextvars
import os
import socket
import uuid
from contextlib import contextmanager
from typing import Iterator

from fleet_tui.domain.models import Lease

held_lease: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("held_lease", default=None)


@contextmanager
def holding(lease: Lease | None) -> Iterator[None]:
    token = held_lease.set(lease)
    try:
        yield
    finally:
        held_lease.reset(token)


def new_conductor_id() -> str:
    """One id per boot: host-pid-random, so a restarted conductor is a new one."""
    host = "".join(ch for ch in socket.gethostname().lower() if ch.isalnum())[:20] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
