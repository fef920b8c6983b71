"""The command worker: runs, beside a conductor, the commands that observer faces submit
through the database, through the conductor's own methods, as the operator each command
records. Woken by LISTEN on fleet_commands. It takes the queue, the actions and the task
reads it uses (engine/ports.py), built by the composition root (session.command_worker). A claim is renewed while its command runs and
lapses when this conductor dies, so another conductor takes the command again; commands
retaken that way check first whether the effect already happened."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from typing import Any, cast
from collections.abc import Callable, Iterable

from fleet_tui.domain.commands import INTERNAL_ERROR, CommandVerb, describe_error
from fleet_tui.domain.errors import FleetError, NotFoundError
from fleet_tui.domain.models import RuntimeKind, SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.kit.loops import PeriodicLoop
from fleet_tui.engine.kit.polling import PollingWorker
from fleet_tui.engine.kit.supervisor import Supervisor
from fleet_tui.engine.ports import CommandActions, CommandQueue, TaskReader
from fleet_tui.infra.protocols import Runtime
from fleet_tui.store import commands as command_store
from fleet_tui.store.commands import Command
from fleet_tui.store.db import Database

log = logging.getLogger(__name__)

MAX_LINE_CHARS = 4_000
MAX_LOG_BYTES = 256 * 1024
MAX_DIFF_BYTES = 512 * 1024  # both stay well under the row's 1 MiB result check
RETENTION = timedelta(days=1)
CLEANUP_EVERY_S = 3600.0
INTERNAL_MESSAGE = "the conductor could not carry out the command (internal error; its log has the detail)"


@dataclass(frozen=True)
class StoreCommandQueue:
    """The fleet_commands table as one conductor takes its commands."""

    db: Database
    conductor_id: str

    async def claim(self, *, ttl_s: float, limit: int) -> list[Command]:
        # a claimer counts as alive as long as a claim lasts
        return await command_store.claim(self.db, self.conductor_id, ttl_s=ttl_s, alive_s=ttl_s, limit=limit)

    async def renew(self, ids: list[int], ttl_s: float) -> int:
        return await command_store.renew(self.db, self.conductor_id, ids, ttl_s)

    async def finish(self, command_id: int, *, result: dict[str, Any] | None = None,
                     error: str | None = None, error_kind: str | None = None) -> bool:
        return await command_store.finish(self.db, command_id, self.conductor_id, result=result,
                                          error=error, error_kind=error_kind)

    async def delete_finished_before(self, before: datetime) -> int:
        return await command_store.delete_finished_before(self.db, before)


@dataclass(frozen=True)
class Executor:
    """What carrying out a command uses: the operator actions, the task reads, the runtimes
    (a retaken stop kills an agent the first run may have left)."""

    actions: CommandActions
    tasks: TaskReader
    runtime_for: Callable[[RuntimeKind | str], Runtime]


@dataclass
class CommandStats:
    claimed: int = 0
    done: int = 0
    failed: int = 0
    errors: int = 0


class CommandWorker(PollingWorker):
    wake_channel = command_store.SUBMIT_CHANNEL
    wake_name = "fleet-commands"

    def __init__(self, *, queue: CommandQueue, executor: Executor, conductor_id: str, ttl_s: float,
                 wake_url: str | None = None, poll_s: float = 2.0, concurrency: int = 8) -> None:
        """ttl_s: how long a claim lasts unrenewed (the conductor's lease TTL: a claim lapses
        as fast as a dead conductor's leases do)."""
        super().__init__()
        self.queue = queue
        self.executor = executor
        self.conductor_id = conductor_id
        self._wake_url = wake_url
        self._poll_s = poll_s
        self._concurrency = concurrency
        self.ttl_s = ttl_s
        self.stats = CommandStats()
        self._running = Supervisor("commands")  # the commands in hand, by id
        self._renewer: PeriodicLoop | None = None  # while commands run
        self._next_cleanup = 0.0

    @property
    def worker_name(self) -> str:
        return f"commands-{self.conductor_id}"

    @property
    def poll_s(self) -> float:
        return self._poll_s

    async def run_once(self) -> int:
        """Claim what this conductor may run (up to its free slots) and start each."""
        await self._cleanup_if_due()
        commands = await self.queue.claim(ttl_s=self.ttl_s, limit=self._concurrency - len(self._running))
        for command in commands:
            self.stats.claimed += 1
            task = self._running.start(self._run(command), name=f"fleet-command-{command.id}", key=command.id)
            task.add_done_callback(self._finished)
        if self._running and self._renewer is None:
            self._renewer = PeriodicLoop(self._renew, name="fleet-command-claims", interval_s=self.ttl_s / 3,
                                         delay_first=True)
            self._renewer.start()
        return len(commands)

    def _finished(self, _task: asyncio.Task[Any]) -> None:
        if not self._running and self._renewer is not None:
            self._renewer.halt()  # ends at once unless a renewal is in flight
            self._renewer = None
        self.poke()  # a slot freed: look for more at once

    async def idle(self, timeout_s: float = 30.0) -> None:
        """Wait until the commands in hand have finished (tests, shutdown)."""
        if self._running:
            await asyncio.wait(self._running.tasks, timeout=timeout_s)

    async def _run(self, command: Command) -> None:
        outcome: dict[str, Any]
        try:
            outcome = {"result": await execute(self.executor, command)}
            self.stats.done += 1
        except FleetError as exc:
            kind, message, detail = describe_error(exc)
            outcome = {"error": message, "error_kind": kind, "result": {"detail": detail} if detail else None}
            self.stats.failed += 1
        except Exception:
            log.exception("command %d (%s) failed inside the conductor", command.id, command.verb)
            outcome = {"error": INTERNAL_MESSAGE, "error_kind": INTERNAL_ERROR}
            self.stats.failed += 1
        try:
            ours = await self.queue.finish(command.id, **outcome)
        except Exception as exc:  # unrecorded: the claim lapses and the command is retaken
            self.stats.errors += 1
            log.warning("could not record the outcome of command %d (%s)", command.id, type(exc).__name__)
            return
        if not ours:
            log.warning("command %d finished after its claim lapsed; another conductor has it", command.id)

    async def _renew(self) -> None:
        if not self._running:
            return
        try:
            await self.queue.renew(cast(list[int], self._running.keys()), self.ttl_s)
        except Exception as exc:  # the claim may lapse; the command is then retaken
            log.warning("could not renew command claims (%s)", type(exc).__name__)

    async def _cleanup_if_due(self) -> None:
        if time.monotonic() < self._next_cleanup:
            return
        self._next_cleanup = time.monotonic() + CLEANUP_EVERY_S
        removed = await self.queue.delete_finished_before(datetime.now(UTC) - RETENTION)
        if removed:
            log.info("removed %d finished commands older than %s", removed, RETENTION)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Claim nothing more, let the commands in hand finish (a lapsed one is retaken)."""
        await super().stop(timeout_s)
        await self._running.shutdown(timeout_s)
        if self._renewer is not None:
            await self._renewer.stop(timeout_s=0)
            self._renewer = None


async def execute(executor: Executor, command: Command) -> dict[str, Any]:
    """Carry out one command through the conductor's actions; the result as JSON-ready data."""
    actions = executor.actions
    op, verb, task_id = command.operator, command.verb, command.task_id or ""
    if verb == CommandVerb.SPAWN:
        # a retaken spawn is safe: the same request derives the same idempotency key
        spawned = await actions.spawn(op, SpawnRequest.model_validate(command.args["request"]))
        return spawned.model_dump(mode="json")
    if command.attempts > 1:
        already = await _already_done(executor, command)
        if already is not None:
            return already
    task_actions = {CommandVerb.STOP: actions.stop, CommandVerb.RETRY: actions.retry, CommandVerb.MERGE: actions.merge}
    if verb in task_actions:
        task = await task_actions[verb](op, task_id)
        return {"task": task.model_dump(mode="json")}
    if verb == CommandVerb.DELETE:
        await actions.delete(op, task_id)
        return {"deleted": task_id}
    if verb == CommandVerb.LOGS:
        return await read_logs(actions, command)
    if verb == CommandVerb.DIFF:
        return capped_text(await actions.diff(op, task_id))
    raise FleetError(f"verb {verb} is not known to this conductor")


async def _already_done(executor: Executor, command: Command) -> dict[str, Any] | None:
    """For a command whose first run died with its conductor: its effect, if it happened."""
    try:
        task = await executor.tasks.get(command.task_id or "", operator=command.operator)
    except NotFoundError:
        return {"deleted": command.task_id} if command.verb == CommandVerb.DELETE else None
    if command.verb == CommandVerb.STOP and task.status == TaskStatus.CANCELLED:
        await executor.runtime_for(task.runtime).kill(task.id)  # the first run may have died before it
        return {"task": task.model_dump(mode="json")}
    if command.verb == CommandVerb.MERGE and task.status == TaskStatus.MERGED:
        return {"task": task.model_dump(mode="json")}
    return None


async def read_logs(actions: CommandActions, command: Command) -> dict[str, Any]:
    """{"lines", "cursor", "truncated"}: without "from" the newest lines (a tail) that fit
    the result; from a cursor the oldest, with the cursor just after the last one kept,
    so a follower skips nothing ("truncated": read again at once)."""
    op, task_id, lines = command.operator, command.task_id or "", int(command.args.get("lines", 200))
    cursor = command.args.get("from")
    read, after = await actions.logs_from(op, task_id, cursor, lines)
    if cursor is None:
        return {**capped_lines(read), "cursor": after}
    truncated = False
    while (fit := how_many_fit(read)) < len(read):
        # only the runtime knows where a line ends: ask it again for as many as fit (the
        # same first lines, as a log only grows; the cursor it gives matches them anyway)
        truncated = True
        read, after = await actions.logs_from(op, task_id, cursor, fit)
    return {"lines": [line[:MAX_LINE_CHARS] for line in read], "cursor": after, "truncated": truncated}


def capped_lines(lines: list[str]) -> dict[str, Any]:
    """The newest lines that fit MAX_LOG_BYTES as JSON, each cut to MAX_LINE_CHARS."""
    fit = how_many_fit(reversed(lines))
    kept = [line[:MAX_LINE_CHARS] for line in lines[len(lines) - fit:]]
    return {"lines": kept, "truncated": fit < len(lines)}


def how_many_fit(lines: Iterable[str]) -> int:
    """How many of the lines, in this order and cut to MAX_LINE_CHARS, fit MAX_LOG_BYTES."""
    size = count = 0
    for line in lines:
        size += len(json.dumps(line[:MAX_LINE_CHARS])) + 2  # ASCII-escaped JSON: an upper bound of its bytes
        if size > MAX_LOG_BYTES:
            break
        count += 1
    return count


def capped_text(text: str) -> dict[str, Any]:
    """The diff's head that fits MAX_DIFF_BYTES as JSON."""
    cut = len(text)
    while len(json.dumps(text[:cut])) > MAX_DIFF_BYTES:
        cut = int(cut * MAX_DIFF_BYTES / len(json.dumps(text[:cut])) * 0.95)
    return {"diff": text[:cut], "truncated": cut < len(text)}
