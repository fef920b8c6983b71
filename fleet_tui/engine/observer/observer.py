"""The observer: what the control room drives when the fleet's conductors run elsewhere
(`fleet-tui --attach DATABASE_URL`). It offers the conductor's surface to the face:

- reads (status, detail) straight from the database, under the operator's row-level security;
- news from the outbox through NOTIFY (engine.observer.feed.ChangeFeed, as the control room over a
  conductor has too): each event becomes the task's current record (TaskChanged, or
  TaskDeleted once gone) on its own bus, plus a periodic MonitorTick carrying the fleet's
  conductor count;
- actions (spawn, stop, retry, delete, merge, logs, diff) as commands in the database, run
  by the conductor that holds the task (engine.workers.command_worker) and awaited here.

It never starts tmux, docker or worktrees: the agents live with their conductors."""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from typing import TYPE_CHECKING, Any, NamedTuple
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

from fleet_tui.config import Settings
from fleet_tui.domain.commands import CommandVerb
from fleet_tui.domain.errors import FleetError, NotFoundError, PermissionDeniedError
from fleet_tui.domain.models import (
    Operator,
    RuntimeKind,
    SpawnRequest,
    SpawnResult,
    StatusSummary,
    TaskDetail,
    TaskQuery,
    TaskRecord,
)
from fleet_tui.domain.status import AGENT_STATUSES
from fleet_tui.engine.kit.bus import EventBus, MonitorTick
from fleet_tui.engine.kit.loops import PeriodicLoop
from fleet_tui.engine.workers.command_client import CommandClient
from fleet_tui.engine.spawn.governor import TierLimits
from fleet_tui.engine.observer.feed import ChangeFeed
from fleet_tui.store import audit as audit_store
from fleet_tui.store import executions as executions_store
from fleet_tui.store import leases as lease_store
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry

if TYPE_CHECKING:  # the metrics (and prometheus_client) load on the first fleet_health()
    from fleet_tui.engine.ops.metrics import Telemetry

log = logging.getLogger(__name__)

LISTEN_POLL_S = 2.0   # a missed outbox NOTIFY costs at most this
FOLLOW_EVERY_S = 1.0  # how often a followed log is polled once it is quiet
FOLLOW_LINES = 1_000  # the tail a follow starts with, and each read after it


class LogPage(NamedTuple):
    lines: list[str]
    cursor: int  # where the next read starts
    more: bool  # a read from a cursor came back full: more may be waiting


class ObserverHealth:
    """Stands where the app expects a monitor: the fleet's monitors run in its conductors;
    this reports how many beat, and the observer's own listening."""

    def __init__(self) -> None:
        self.running = False  # at least one conductor beats
        self.conductors = 0
        self.cycles = 0
        self.errors = 0
        self.last_cycle_ms = 0.0

    def health(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"running": self.running, "cycles": self.cycles, "errors": self.errors,
                                   "last_cycle_ms": round(self.last_cycle_ms, 1), "observer": True,
                                   "conductors": self.conductors}
        if not self.running:
            figures["degraded"] = ["no live conductor: actions wait for one"]
        return figures


class ObserverHeadroom(TierLimits):
    """Stands where a face expects the governor: the tier limits and the fleet's capacity
    from settings. The conductors admit; this process admits nothing, so its counts stay 0."""

    admissions = 0
    denials = 0


class Observer:
    def __init__(self, settings: Settings, db: Database, *, operator: Operator, timeout_s: float = 30.0,
                 tick_s: float = 2.0, follow_every_s: float = FOLLOW_EVERY_S, owns_db: bool = False) -> None:
        self.settings = settings
        self.db = db
        self.operator = operator
        self.registry = TaskRegistry(db)
        self.governor = ObserverHeadroom(settings.governor)
        self.bus = EventBus()
        self.monitor: ObserverHealth | None = None  # set by start(); the app then starts nothing
        self.workers = None  # no relay or command worker here: those run beside the conductors
        self.telemetry: Telemetry | None = None  # no monitor or relay here observes anything
        self._health = ObserverHealth()
        self._tick_s = tick_s
        self._follow_every_s = follow_every_s
        self._owns_db = owns_db
        self._feed: ChangeFeed | None = None
        self.commands = CommandClient(db, timeout_s=timeout_s)
        self._ticks: PeriodicLoop | None = None
        self._tmux: Any = None

    @classmethod
    async def open(cls, settings: Settings, *, operator: Operator, **options: Any) -> Observer:
        """Connect to the fleet's database (its role and migrations, as a conductor would)."""
        return cls(settings, await Database.open(settings), operator=operator, owns_db=True, **options)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, monitor: bool = True) -> None:
        """Listen from now on (the caller loads the present from status); `monitor` is
        accepted for the app's sake: the monitors run in the conductors."""
        if self.monitor is not None:
            return
        self._feed = ChangeFeed(self.db, self.bus, operator=self.operator, poll_s=LISTEN_POLL_S)
        await self._feed.start()
        await self._refresh_health()
        self._ticks = PeriodicLoop(self._tick, name="fleet-observer-tick", interval_s=self._tick_s, delay_first=True)
        self._ticks.start()
        self.monitor = self._health

    async def shutdown(self) -> None:
        if self._ticks is not None:
            await self._ticks.stop(timeout_s=0)
            self._ticks = None
        if self._feed is not None:
            await self._feed.close()
            self._feed = None
        await self.commands.close()
        self.monitor = None

    async def close(self) -> None:
        await self.shutdown()
        if self._owns_db:
            await self.db.close()

    # --- news: the change feed, and a periodic tick ---------------------------------------------

    async def _tick(self) -> None:
        try:
            await self._refresh_health()
        except Exception as exc:
            self._health.errors += 1
            log.warning("observer health refresh failed (%s)", type(exc).__name__)
        h = self._health
        self.bus.publish(MonitorTick(h.cycles, h.last_cycle_ms, h.errors))

    async def _refresh_health(self) -> None:
        started = time.perf_counter()
        conductors = await lease_store.live_conductors(self.db, self.settings.monitor.lease_ttl_s)
        h = self._health
        h.conductors, h.running = conductors, conductors > 0
        h.cycles += 1
        h.last_cycle_ms = (time.perf_counter() - started) * 1000
        if self._feed is not None:
            h.errors = max(h.errors, self._feed.health_errors())

    # --- reads, from the database --------------------------------------------------------------

    async def _owned(self, operator: Operator, task_id: str) -> TaskRecord:
        task = await self.registry.get(task_id, operator=operator)
        if task.operator_id != operator.id and not operator.is_admin:
            raise NotFoundError("task", task_id)
        return task

    async def status(self, operator: Operator, *, all_operators: bool = False, limit: int = 500) -> StatusSummary:
        if all_operators and not operator.is_admin:
            raise PermissionDeniedError("all=true needs an admin operator")
        tasks = await self.registry.query(
            TaskQuery(operator_id=None if all_operators else operator.id, limit=limit), operator=operator)
        counts: dict[str, int] = {}
        for task in tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        return StatusSummary(
            operator_id=operator.id, tier=operator.tier, counts=counts,
            live=await self.registry.count_active(operator.id), limit=self.governor.limit_for(operator.tier),
            fleet_live=await self.registry.count_all_active(), fleet_capacity=self.governor.fleet_capacity,
            tasks=tasks)

    async def detail(self, operator: Operator, task_id: str) -> TaskDetail:
        task = await self._owned(operator, task_id)
        audit = await audit_store.list_for_task(self.db, task.id, operator=operator)
        executions = await executions_store.list_for_task(self.db, task.id, operator=operator)
        return TaskDetail(task=task, audit=[entry.__dict__ for entry in audit], executions=executions)

    async def fleet_health(self) -> dict[str, float]:
        from fleet_tui.engine.ops.metrics import collect

        return await collect(self.db, process=self)

    async def spawn_field_errors(self, request: SpawnRequest) -> dict[str, str]:
        return {}  # the conductor that takes the spawn checks it; its refusal names the field

    async def output_host(self, operator: Operator, task_id: str) -> str | None:
        return None  # output is read through the conductors' LOGS commands, wherever they run

    async def change_feed(self, operator: Operator) -> None:
        return None  # start() runs the observer's own feed onto its bus

    # --- actions, through the conductors --------------------------------------------------------

    async def spawn(self, operator: Operator, request: SpawnRequest) -> SpawnResult:
        result = await self.commands.run(operator, CommandVerb.SPAWN,
                                    args={"request": request.model_dump(mode="json", exclude_none=True)})
        return SpawnResult.model_validate(result)

    async def stop(self, operator: Operator, task_id: str) -> TaskRecord:
        return TaskRecord.model_validate((await self.commands.run(operator, CommandVerb.STOP, task_id))["task"])

    async def retry(self, operator: Operator, task_id: str, *, allow: list[str] | None = None) -> TaskRecord:
        if allow:
            raise FleetError("granting an agent permissions is not carried to other hosts' conductors; "
                             f"run fleet-tui retry {task_id} --allow RULE on the conductor's host")
        return TaskRecord.model_validate((await self.commands.run(operator, CommandVerb.RETRY, task_id))["task"])

    async def answer(self, operator: Operator, task_id: str, text: str) -> TaskRecord:
        raise FleetError("answers are not carried to other hosts' conductors; run fleet-tui answer "
                         f"{task_id} TEXT on the conductor's host")

    async def merge(self, operator: Operator, task_id: str) -> TaskRecord:
        return TaskRecord.model_validate((await self.commands.run(operator, CommandVerb.MERGE, task_id))["task"])

    async def delete(self, operator: Operator, task_id: str) -> None:
        await self.commands.run(operator, CommandVerb.DELETE, task_id)

    async def logs(self, operator: Operator, task_id: str, n: int = 200) -> list[str]:
        return (await self._read_logs(operator, task_id, None, n)).lines

    async def logs_from(self, operator: Operator, task_id: str, cursor: int | None,
                        max_lines: int = 200) -> tuple[list[str], int]:
        page = await self._read_logs(operator, task_id, cursor, max_lines)
        return page.lines, page.cursor

    async def _read_logs(self, operator: Operator, task_id: str, cursor: int | None, n: int) -> LogPage:
        """A tail (cursor None) or the lines after a cursor, through a LOGS command."""
        args: dict[str, Any] = {"lines": n} if cursor is None else {"lines": n, "from": cursor}
        result = await self.commands.run(operator, CommandVerb.LOGS, task_id, args)
        if "cursor" not in result:
            raise FleetError("the conductor holding this task predates log cursors; upgrade it to follow logs")
        lines = list(result["lines"])
        more = cursor is not None and (bool(result.get("truncated")) or len(lines) >= n)
        return LogPage(lines, int(result["cursor"]), more)

    async def diff(self, operator: Operator, task_id: str) -> str:
        result = await self.commands.run(operator, CommandVerb.DIFF, task_id)
        return str(result["diff"]) + ("\n… (diff truncated)\n" if result.get("truncated") else "")

    async def follow_logs(self, operator: Operator, task_id: str, *, after: int | None = None) -> AsyncIterator[str]:
        """The agent's output: its last FOLLOW_LINES lines (an old long log is not replayed),
        or the lines after a cursor logs_from returned, then every line after them exactly
        once, by cursor; read again at once while reads come back full. Ends once no agent
        runs for the task (after reading what it left)."""
        cursor: int | None = after
        while True:
            task = await self._owned(operator, task_id)  # before reading: the last read sees all
            while True:
                page = await self._read_logs(operator, task_id, cursor, FOLLOW_LINES)
                for line in page.lines:
                    yield line
                cursor = page.cursor
                if not page.more:
                    break
            if task.status not in AGENT_STATUSES:
                return
            await asyncio.sleep(self._follow_every_s)

    # --- attach ------------------------------------------------------------------------------

    async def attach_elsewhere(self, task: TaskRecord) -> str | None:
        """None when the agent's tmux session is reachable from here (attach as usual); else
        what to run on the conductor's host."""
        if task.runtime == RuntimeKind.TMUX and await self._local_tmux().is_alive(task.id):
            return None
        if task.runtime == RuntimeKind.DOCKER and task.container_id:
            argv = ["docker", "exec", "-it", task.container_id, "sh"]
        else:
            argv = ["tmux", "-L", self.settings.tmux_socket, "attach-session", "-t",
                    f"={task.tmux_session or f'fleet-{task.id}'}"]
        host = await lease_store.holder_host(self.db, task.id)
        where = f"on {host}" if host else "on its conductor's host"
        return f"the agent runs {where}, not here; attach from a shell there:\n{shlex.join(argv)}"

    def _local_tmux(self) -> Any:
        if self._tmux is None:
            from fleet_tui.infra.tmux_runtime import TmuxRuntime

            # only asked whether a session exists: nothing is started
            self._tmux = TmuxRuntime(self.settings.tmux_socket, self.settings.data_dir / "logs")
        return self._tmux


def fleet_address(url: str) -> str:
    """host:port/database of a PostgreSQL URL, without user or password (for a banner)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or parse_qs(parts.query).get("host", ["local socket"])[0]
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the given database"
    database = parts.path.lstrip("/") or "postgres"
    return f"{host}{port}/{database}"
