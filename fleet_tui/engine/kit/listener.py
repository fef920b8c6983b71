"""LISTEN on a dedicated connection, for faces and workers.

Wakeup: a connection LISTENing on some channels; wait() returns when a notification
arrives (or after a timeout, so a missed one costs one poll). It reconnects after the
server drops it (restart, pg_terminate_backend).

OutboxListener: what an observer face iterates: the outbox events after its cursor, in
commit order, woken by the relay's NOTIFY on `fleet_events` (payload: ids only). After a
reconnect it simply reads on from its cursor, so nothing committed while it was away is
missed and nothing is yielded twice."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from collections.abc import AsyncIterator, Sequence

import asyncpg

from fleet_tui.domain.models import Operator
from fleet_tui.store import outbox as outbox_store
from fleet_tui.store.errors import is_connection_lost

log = logging.getLogger(__name__)
RECONNECT_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)


class Wakeup:
    def __init__(self, url: str, channels: Sequence[str], *, name: str = "fleet-listener") -> None:
        self._url = url
        self._channels = tuple(channels)
        self._name = name
        self._conn: asyncpg.Connection | None = None
        self._event = asyncio.Event()
        self.connects = 0  # 1 after the first connect; more means reconnects
        self.notifications = 0

    @property
    def backend_pid(self) -> int | None:
        return None if self._conn is None or self._conn.is_closed() else self._conn.get_server_pid()

    async def connection(self) -> asyncpg.Connection:
        """The live connection, (re)connecting with backoff until it answers."""
        failures = 0
        while self._conn is None or self._conn.is_closed():
            try:
                conn = await outbox_store.connect_dedicated(self._url, application_name=self._name)
                for channel in self._channels:
                    await conn.add_listener(channel, self._on_notify)
                conn.add_termination_listener(self._on_terminated)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                delay = RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S) - 1)]
                failures += 1
                log.warning("%s: cannot connect (%s); again in %.2fs", self._name, type(exc).__name__, delay)
                await asyncio.sleep(delay)
                continue
            self._conn = conn
            self.connects += 1
            self._event.set()  # a (re)connect is a reason to look: something may have been missed
        return self._conn

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.notifications += 1
        self._event.set()

    def _on_terminated(self, conn: Any) -> None:
        self._event.set()

    def broken(self) -> None:
        """The caller saw the connection fail: drop it; the next connection() reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
        self._event.set()

    def poke(self) -> None:
        self._event.set()

    async def wait(self, timeout_s: float) -> bool:
        """True when woken (notification, reconnect, poke), False on timeout."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except (TimeoutError, OSError, asyncpg.InterfaceError):
                conn.terminate()


class OutboxListener:
    """`async for event in OutboxListener(url, operator=op): ...` yields envelope dicts
    (id, event_id, type, task_id, operator_id, payload, txid, created_at).

    operator None reads as an admin (a conductor's own face); otherwise row-level security
    limits the events to that operator's. `after` resumes from a saved cursor; None
    starts at the current head (the face loads the present from the registry)."""

    def __init__(self, url: str, *, operator: Operator | None = None, channel: str = "fleet_events",
                 after: outbox_store.Cursor | None = None, poll_s: float = 2.0, batch: int = 500) -> None:
        self.wakeup = Wakeup(url, [channel], name="fleet-face-listener")
        self._operator_id = operator.id if operator is not None else ""
        self._is_admin = operator is None or operator.is_admin
        self.cursor = after
        self._poll_s = poll_s
        self._batch = batch
        self.read_errors = 0
        self._held_rounds = 0  # reads in a row that found events held back above the horizon

    @property
    def reconnects(self) -> int:
        return max(self.wakeup.connects - 1, 0)

    async def start(self) -> None:
        """Connect and fix the starting cursor now (events after this call are not missed)."""
        await self._read()

    async def _read(self) -> list[outbox_store.OutboxRow]:
        while True:
            conn = await self.wakeup.connection()
            try:
                self.cursor, rows, held = await outbox_store.read_after_as(
                    conn, self.cursor, operator_id=self._operator_id, is_admin=self._is_admin,
                    limit=self._batch)
                self._held_rounds = self._held_rounds + 1 if held else 0
                return rows
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if not _connection_failure(exc, conn):
                    raise  # a real error (permissions, a bad cursor) must not loop for ever
                self.read_errors += 1
                log.warning("face listener lost its connection (%s); reconnecting", type(exc).__name__)
                self.wakeup.broken()

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            rows = await self._read()
            for row in rows:
                yield row.envelope()
            if len(rows) < self._batch:
                # events held back by an open transaction: no NOTIFY comes when it ends
                await self.wakeup.wait(outbox_store.next_look_s(self._held_rounds, self._poll_s))

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self.events()

    async def close(self) -> None:
        await self.wakeup.close()

    async def __aenter__(self) -> OutboxListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _connection_failure(exc: BaseException, conn: asyncpg.Connection) -> bool:
    """Lost connection (terminated backend, server restart, network) vs. a query error."""
    return conn.is_closed() or isinstance(exc, asyncpg.InterfaceError) or is_connection_lost(exc)
