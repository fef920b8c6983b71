"""The observer's side of a command: submit it, wait for a conductor's answer (woken by
NOTIFY on fleet_command_done, polling as a fallback), hand back its result or raise its
error as the conductor raised it. A command nobody took in time is withdrawn, so it
never runs late."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fleet_tui.domain.commands import READ_VERBS, CommandStatus, CommandVerb, rebuild_error
from fleet_tui.domain.errors import FleetError
from fleet_tui.domain.errors import NoConductorAnswered as NoConductorAnswered  # in the error catalogue
from fleet_tui.domain.models import Operator
from fleet_tui.engine.kit.listener import Wakeup
from fleet_tui.store import commands as command_store
from fleet_tui.store.commands import Command
from fleet_tui.store.db import Database

POLL_S = 1.0  # a missed completion NOTIFY costs at most this


class CommandClient:
    def __init__(self, db: Database, *, timeout_s: float = 30.0) -> None:
        self.db = db
        self.timeout_s = timeout_s
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._done = _CommandDone(db.app_url, self._waiters)

    async def run(self, operator: Operator, verb: CommandVerb, task_id: str | None = None,
                  args: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._done.connection()  # LISTEN before submitting: the answer cannot slip past
        command_id = await command_store.submit(self.db, operator, verb, task_id=task_id, args=args)
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                answered = asyncio.get_running_loop().create_future()
                self._waiters[command_id] = answered
                found = await command_store.fetch(self.db, operator, command_id)
                if found is None:
                    raise FleetError(f"command {command_id} disappeared before it was answered")
                if found.finished:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise await self._give_up(operator, found)
                try:
                    await asyncio.wait_for(answered, min(remaining, POLL_S))
                except TimeoutError:
                    pass
        finally:
            self._waiters.pop(command_id, None)
        if found.verb in READ_VERBS:  # nothing to keep: a followed log polls every second
            await command_store.forget(self.db, operator, command_id)
        if found.status == CommandStatus.FAILED:
            raise rebuild_error(found.error_kind, found.error or "failed", (found.result or {}).get("detail"))
        return found.result or {}

    async def _give_up(self, operator: Operator, command: Command) -> NoConductorAnswered:
        waited = f"{self.timeout_s:g} s"
        if command.status == CommandStatus.PENDING and await command_store.abandon(
                self.db, operator, command.id, f"no conductor answered within {waited}"):
            return NoConductorAnswered(f"no conductor answered within {waited}: is a conductor running for"
                                       f" this fleet? ({command.verb} withdrawn, nothing was done)")
        who = f"conductor {command.claimed_by}" if command.claimed_by else "a conductor"
        return NoConductorAnswered(f"{who} took the {command.verb} command but did not finish within"
                                   f" {waited}; the table will show the outcome")

    async def close(self) -> None:
        await self._done.close()


class _CommandDone(Wakeup):
    """LISTEN fleet_command_done: wakes whoever waits for that command id."""

    def __init__(self, url: str, waiters: dict[int, asyncio.Future[None]]) -> None:
        super().__init__(url, [command_store.DONE_CHANNEL], name="fleet-observer-commands")
        self._waiters = waiters

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        super()._on_notify(conn, pid, channel, payload)
        try:
            waiter = self._waiters.get(int(payload))
        except ValueError:
            return
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
