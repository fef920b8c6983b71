"""FleetApp: the control room. The engine runs inside the app's loop as one worker (group
"engine"); a pump turns bus events into coalesced messages; only @on handlers touch
widgets. make_app is shared by the CLI, the tests, the screenshot script and the bench."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Awaitable, Callable

from textual import on
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message_pump import MessagePump
from textual.notifications import SeverityLevel

from fleet_tui.assets import asset_dir
from fleet_tui.config import Settings
from fleet_tui.domain.errors import FleetError
from fleet_tui.domain.models import Operator, TaskRecord
from fleet_tui.domain.status import AGENT_STATUSES
from fleet_tui.domain.text import strip_ansi
from fleet_tui.engine.kit.bus import Event, MonitorTick, Notice, TaskChanged, TaskDeleted
from fleet_tui.ui.commands import FleetCommands
from fleet_tui.ui.format import utc_now
from fleet_tui.ui.messages import EngineFailed, EngineProgress, EngineReady, FleetBatch, FleetHealth, LogLines
from fleet_tui.ui.screens.confirm import QUESTIONS, STOP_ALL, ConfirmScreen, QuitScreen
from fleet_tui.ui.screens.detail import DetailScreen
from fleet_tui.ui.screens.help import HelpScreen
from fleet_tui.ui.screens.main import MAIN_BINDINGS, MainScreen
from fleet_tui.ui.notices import error_notice
from fleet_tui.ui.verbs import attach_command, outside_tmux, return_hint, with_return_hint

if TYPE_CHECKING:  # imported after the first frame (import_engine_here)
    from fleet_tui.engine.conductor import Conductor
    from fleet_tui.engine.observer.observer import Observer
    from fleet_tui.engine.ports import Closable, FleetFace

    OpenEngine = Callable[[], Awaitable[FleetFace]]

STYLES = asset_dir("styles")
PUMP_COALESCE_S = 0.02  # at most ~50 table batches a second, whatever the event rate
LOG_FLUSH_S = 0.03      # log lines reach the pane in batches this often
LOG_YIELD_EVERY = 2_000  # lines read before the reader lets the loop breathe
TASK_LIMIT = 5_000
HEALTH_POLL_S = 3.0      # the fleet's figures (database queries) are read this often, in a worker
HEALTH_TIMEOUT_S = 10.0
HEALTH_AT_START_S = 1.0  # the first read comes with the tasks unless slower than this
# the fleet's figures (Conductor.fleet_health -> engine.ops.metrics.collect) the health panel shows
# beside the in-process monitor's
FLEET_HEALTH_KEYS = ("outbox_lag_seconds", "outbox_pending", "dlq_depth", "spawn_queue_depth", "open_breakers",
                     "agent_warnings")

log = logging.getLogger(__name__)


class FleetApp(App[None]):
    CSS_PATH = [STYLES / "base.tcss", STYLES / "main.tcss", STYLES / "detail.tcss", STYLES / "dialogs.tcss"]
    TITLE = "fleet-tui"
    COMMANDS = App.COMMANDS | {FleetCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = [Binding("ctrl+t", "toggle_theme", "Theme", id="fleet.theme", show=False,
                        tooltip="Switch between the light and the dark theme")]

    def __init__(self, *, operator: Operator, conductor: FleetFace | None = None,
                 open_engine: OpenEngine | None = None,
                 close_engine: Callable[[FleetFace], Awaitable[None]] | None = None,
                 default_repo: str = "", banner: str = "", keymap: dict[str, str] | None = None,
                 now: Callable[[], datetime] = utc_now, start_monitor: bool = True,
                 theme: str = "textual-dark", log_path: Path | None = None) -> None:
        super().__init__()
        self.log_path = log_path  # where this control room's log goes (the health panel says)
        if conductor is None and open_engine is None:
            raise ValueError("FleetApp needs a conductor or a way to open one")
        self.conductor: FleetFace | None = conductor  # the fleet: a Conductor, an Observer, a test's
        self.operator = operator
        self.default_repo = default_repo
        self.banner = banner
        self.now = now
        self._open_engine = open_engine
        self._close_engine = close_engine
        self._owns_conductor = False
        self._started_monitor = False
        self._start_monitor = start_monitor
        self._queue: asyncio.Queue[Event] | None = None
        self._feed: Closable | None = None
        self.user_keymap = dict(keymap or {})
        self.engine_ready = asyncio.Event()
        self.screen_ready = asyncio.Event()  # set by MainScreen.on_mount; handlers need its widgets
        self.health: dict[str, Any] = {}  # what the health panel shows: monitor + fleet figures
        self.fleet_figures: dict[str, Any] | None = None  # the last fleet_health() answer
        self.fleet_error: str | None = None  # why the last one failed, if it did
        self.health_poll_s = HEALTH_POLL_S
        self._reading_health = False
        self._froze_heap = False
        self.theme = theme

    # --- start-up: first frame at once, the engine after ------------------------------------

    def get_default_screen(self) -> MainScreen:
        return MainScreen(id="main")

    @property
    def main(self) -> MainScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    def _on_screen(self) -> bool:
        """The main screen's widgets are there to update: not any more while the app quits
        (a batch or a health read may still be queued then)."""
        table = getattr(self.screen_stack[0], "_table", None) if self.screen_stack else None
        return table is not None and table.is_attached

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Notices carry task text, agent output and error messages: shown as written (see
        format.plain), never parsed as markup."""
        super().notify(strip_ansi(message), title=strip_ansi(title), severity=severity, timeout=timeout,
                       markup=False)

    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        self.run_worker(self._run_engine(), group="engine", exit_on_error=False, name="engine")
        self.theme_changed_signal.subscribe(self, lambda _theme: self.main.theme_changed(self.health))
        self.set_interval(5.0, self._tick_ages)

    async def _run_engine(self) -> None:
        await self.screen_ready.wait()
        try:
            if self.conductor is None:
                self.post_message(EngineProgress("starting PostgreSQL and applying migrations…"))
                await self.screen.wait_for_refresh()  # the first frame is out: now the slow part
                assert self._open_engine is not None
                self.conductor = await self._open_engine()
                self._owns_conductor = True
            if self.conductor.monitor is None:
                self.post_message(EngineProgress("reconciling the registry with tmux…"))
                await self.conductor.start(monitor=self._start_monitor)
                self._started_monitor = True
            self._queue = self.conductor.bus.subscribe()
            # changes made by other processes (CLI, other conductors, other UIs), live; None
            # from a fleet that feeds its bus itself (an observer)
            self._feed = await self.conductor.change_feed(self.operator)
            self.post_message(EngineProgress("loading tasks…"))
            tasks = await self.read_tasks()
            figures, error = await self._read_fleet_health(HEALTH_AT_START_S, quiet_timeout=True)
            self.post_message(EngineReady(tasks, fleet=figures, fleet_error=error))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # shown on screen; the app stays usable for quitting
            self.post_message(EngineFailed(f"{type(exc).__name__}: {exc}"))
            return
        await self._pump(self._queue)

    @property
    def fleet(self) -> FleetFace:
        """The fleet, once the engine is open (every use comes after)."""
        assert self.conductor is not None, "the engine is not open yet"
        return self.conductor

    async def read_tasks(self) -> list[TaskRecord]:
        """Every task this operator may see, from the database (start-up, refresh)."""
        summary = await self.fleet.status(self.operator, all_operators=self.operator.is_admin,
                                              limit=TASK_LIMIT)
        return list(summary.tasks)

    async def _pump(self, queue: asyncio.Queue[Event]) -> None:
        """Bus -> one FleetBatch per drain: the latest record per task wins."""
        while True:
            batch = FleetBatch()
            self._fold(batch, await queue.get())
            await asyncio.sleep(PUMP_COALESCE_S)
            while not queue.empty():
                self._fold(batch, queue.get_nowait())
            if batch.changed or batch.deleted or batch.tick or batch.notices:
                self.post_message(batch)

    def _visible(self, task: TaskRecord) -> bool:
        return self.operator.is_admin or task.operator_id == self.operator.id

    def _fold(self, batch: FleetBatch, event: Event) -> None:
        if isinstance(event, TaskChanged) and self._visible(event.task):
            batch.changed[event.task.id] = event.task
            batch.deleted.discard(event.task.id)
        elif isinstance(event, TaskDeleted):
            batch.changed.pop(event.task_id, None)
            batch.deleted.add(event.task_id)
        elif isinstance(event, MonitorTick):
            batch.tick = self.engine_health()
        elif isinstance(event, Notice):
            batch.notices.append(f"{event.task_id or 'fleet'}: {event.message}")

    def engine_health(self) -> dict[str, Any]:
        """The in-process figures: this conductor's monitor (or an observer's stand-in) and
        the bus; cheap, read on every monitor tick."""
        monitor = self.conductor.monitor if self.conductor is not None else None
        health: dict[str, Any] = dict(monitor.health()) if monitor is not None else {"running": False}
        health["bus_dropped"] = (self.conductor.bus.dropped if self.conductor is not None else 0) or None
        return health

    def merged_health(self, engine: dict[str, Any] | None = None) -> dict[str, Any]:
        """engine_health() (or the figures of a monitor tick) with the fleet's figures of
        the last fleet_health() read."""
        health = dict(engine) if engine is not None else self.engine_health()
        if self.fleet_figures:
            health.update({k: self.fleet_figures[k] for k in FLEET_HEALTH_KEYS if k in self.fleet_figures})
        if self.fleet_error:
            health["fleet_error"] = self.fleet_error
        if self.log_path is not None:
            health["log"] = str(self.log_path)
        return health

    async def _read_fleet_health(self, timeout_s: float = HEALTH_TIMEOUT_S, *,
                                 quiet_timeout: bool = False) -> tuple[dict[str, Any] | None, str | None]:
        """(figures, None), or (None, why) when the conductor cannot say; (None, None) for a
        fleet with no figures to show (an empty answer), or past a quiet timeout (the next
        poll brings them)."""
        try:
            figures = dict(await asyncio.wait_for(self.fleet.fleet_health(), timeout_s))
            return figures or None, None
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return None, None if quiet_timeout else f"no answer in {timeout_s:g} s"
        except Exception as exc:  # the database away, a conductor of another make: say so, go on
            return None, f"unavailable ({type(exc).__name__})"

    def _poll_fleet_health(self) -> None:
        """Every health_poll_s: one read in a worker, never two at once, never per batch."""
        if self._reading_health or self.conductor is None:
            return
        self._reading_health = True
        self.run_worker(self._fleet_health_worker(), group="health", exit_on_error=False)

    async def _fleet_health_worker(self) -> None:
        try:
            figures, error = await self._read_fleet_health()
            self.post_message(FleetHealth(figures, error))
        finally:
            self._reading_health = False

    # --- @on handlers: the only place engine news touches widgets ---------------------------

    @on(EngineProgress)
    def _engine_progress(self, message: EngineProgress) -> None:
        self.main.progress(message.step)

    @on(EngineReady)
    def _engine_ready(self, message: EngineReady) -> None:
        self.main.ready(message.tasks)
        self.fleet_figures, self.fleet_error = message.fleet, message.fleet_error
        self.health = self.merged_health()
        self.main.show_health(self.health)
        self.engine_ready.set()
        self.set_interval(self.health_poll_s, self._poll_fleet_health)
        self.call_after_refresh(self._freeze_heap)

    def _freeze_heap(self) -> None:
        """What exists once the fleet is on screen (engine, records, widgets) lives as long
        as the app: out of the collector's sight, a full collection walks only what came
        after, a pause of tens of milliseconds instead of a hundred or more. Undone on exit."""
        if not self._froze_heap:
            self._froze_heap = True
            gc.freeze()

    @on(FleetHealth)
    def _fleet_health(self, message: FleetHealth) -> None:
        if not self._on_screen():
            return
        if message.figures is not None:
            self.fleet_figures = message.figures
        self.fleet_error = message.error  # figures kept from before are shown with the warning
        self.health = self.merged_health()
        self.main.show_health(self.health)

    @on(EngineFailed)
    def _engine_failed(self, message: EngineFailed) -> None:
        self.main.failed(message.error)
        self.notify(message.error, title="engine", severity="error", timeout=30)

    @on(FleetBatch)
    def _fleet_batch(self, batch: FleetBatch) -> None:
        if not self._on_screen():
            return
        if batch.changed or batch.deleted:
            self.main.apply(list(batch.changed.values()), batch.deleted)
        if batch.tick is not None:
            self.health = self.merged_health(batch.tick)
            self.main.show_health(self.health)
        screen = self.screen
        if isinstance(screen, DetailScreen) and screen.record.id in batch.changed:
            screen.task_changed(batch.changed[screen.record.id])
        for notice in batch.notices[-3:]:
            self.notify(notice, timeout=4)

    def _tick_ages(self) -> None:
        if self.engine_ready.is_set() and self._on_screen():
            self.main.table.refresh_ages()

    # --- governor figures for the panels ---------------------------------------------------

    def governor_limit(self) -> int:
        return self.conductor.governor.limit_for(self.operator.tier) if self.conductor is not None else 0

    def fleet_capacity(self) -> int:
        return self.conductor.governor.fleet_capacity if self.conductor is not None else 0

    # --- verbs: engine calls in workers, failures as notifications ----------------------------

    def task_verb(self, verb: str, task: TaskRecord) -> None:
        """verb on task, after a yes for the verbs that destroy something (confirm.QUESTIONS)."""
        question = QUESTIONS.get(verb)
        if question is None:
            self.run_verb(verb, task.id)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_verb(verb, task.id)

        text = question.format(id=task.id, status=task.status, base=task.base_branch)
        self.push_screen(ConfirmScreen(text, yes=verb.capitalize()), answered)

    def notify_error(self, exc: FleetError, action: str | None = None, *, timeout: float = 8) -> None:
        notice = error_notice(exc, action)
        self.notify(notice.message, title=notice.title, severity=notice.severity, timeout=timeout)

    def run_verb(self, verb: str, task_id: str) -> None:
        self.run_worker(self._verb(verb, task_id), group="verbs", exit_on_error=False)

    async def _verb(self, verb: str, task_id: str) -> None:
        try:
            fleet = self.fleet
            verbs: dict[str, Callable[[Operator, str], Awaitable[TaskRecord | None]]] = {
                "stop": fleet.stop, "retry": fleet.retry, "merge": fleet.merge, "delete": fleet.delete}
            result = await verbs[verb](self.operator, task_id)
        except FleetError as exc:
            self.notify_error(exc, verb)
            return
        status = f" ({result.status})" if isinstance(result, TaskRecord) else ""
        self.notify(f"{verb}: task {task_id}{status}", title=verb, timeout=3)

    # --- logs: one app-owned follower at a time, batched ---------------------------------------

    def follow_logs(self, task_id: str, target: MessagePump, *, group: str = "logs", tail: int | None = None) -> None:
        """One follower per group (the detail screen's, the main screen's preview); tail:
        start from the last `tail` lines instead of the first line."""
        self.stop_following(group)
        self.run_worker(self._follow(task_id, target, tail), group=group, exclusive=True, exit_on_error=False)

    def stop_following(self, group: str = "logs") -> None:
        self.workers.cancel_group(self, group)

    async def _follow(self, task_id: str, target: MessagePump, tail: int | None = None) -> None:
        pending: list[str] = []
        arrived = asyncio.Event()
        done = False

        async def read() -> None:
            nonlocal done
            read_any = False
            try:
                after = None
                if tail is not None:
                    lines, after = await self.fleet.logs_from(self.operator, task_id, None, tail)
                    pending.extend(lines)
                    read_any = bool(lines)
                    arrived.set()
                follow = self.fleet.follow_logs
                stream = follow(self.operator, task_id) if tail is None else follow(self.operator, task_id, after=after)
                async for line in stream:
                    read_any = True
                    pending.append(line)
                    arrived.set()
                    if len(pending) % LOG_YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # a backlog must not starve keys and repaints
                if not read_any:
                    pending.extend(await self._output_elsewhere(task_id))
            except FleetError as exc:
                pending.append(f"(log unavailable: {exc})")
            finally:
                done = True
                arrived.set()

        reader = asyncio.create_task(read())
        try:
            while True:
                await arrived.wait()
                arrived.clear()
                if not done:
                    await asyncio.sleep(LOG_FLUSH_S)  # let a burst gather into one batch
                lines, pending[:] = pending[:], []
                target.post_message(LogLines(task_id, lines, ended=done))
                if done:
                    return
        finally:
            reader.cancel()

    async def _output_elsewhere(self, task_id: str) -> list[str]:
        """No output here for a task another host's conductor holds: lines saying where (two
        short ones: log panes cut long lines at their edge, and the command is the point)."""
        try:
            host = await self.fleet.output_host(self.operator, task_id)
        except FleetError:
            return []
        if not host:
            return []
        return [f"(no output on this host: the agent runs under the conductor on {host};",
                f" read it there with: fleet-tui logs {task_id})"]

    # --- attach ------------------------------------------------------------------------------

    async def attach(self, task: TaskRecord) -> None:
        hint = await self.fleet.attach_elsewhere(task)  # an observer's agents may be remote
        if hint:
            self.notify(hint, title="attach", timeout=20)
            return
        argv = attach_command(task, self.fleet.settings.tmux_socket)
        if os.environ.get("TMUX") and await self._attach_in_popup(argv):
            return
        driver = self._driver
        if driver is None or not driver.can_suspend:
            self.notify(f"this terminal cannot suspend the UI; attach from a shell:\n{shlex.join(argv)}",
                        title="attach", timeout=20)
            return
        # batch_update keeps Textual from painting while the agent owns the terminal;
        # the asyncio subprocess keeps the engine's loop (monitor, pump) running meanwhile
        started = time.monotonic()
        with self.batch_update():
            with self.suspend():
                if argv[:1] != ["tmux"]:  # tmux says it on the agent's status line
                    print(f"fleet-tui: attached to {task.id}, {return_hint(argv)}", flush=True)
                proc = await asyncio.create_subprocess_exec(*with_return_hint(argv), env=outside_tmux())
                await proc.wait()
        self.notify(f"detached from {task.id} after {time.monotonic() - started:.0f}s", timeout=3)

    async def _attach_in_popup(self, argv: list[str]) -> bool:
        """Inside tmux: a popup over this client, the control room live under it. False when
        tmux cannot show one (no client attached to our session, say): its complaint is
        logged, never painted over the table, and the caller suspends instead."""
        inner = "env -u TMUX " + shlex.join(argv)  # display-popup takes one shell command (tmux 3.3)
        proc = await asyncio.create_subprocess_exec(
            "tmux", "display-popup", "-E", "-w", "90%", "-h", "90%", "-T", f" {return_hint(argv)} ", inner,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode == 0:
            return True
        log.info("no tmux popup for attach (%s); suspending instead", err.decode(errors="replace").strip())
        return False

    # --- help, theme, quit ----------------------------------------------------------------------

    def show_help(self) -> None:
        groups: list[tuple[str, list[BindingType]]] = [
            ("Fleet", MAIN_BINDINGS), ("Task detail", DetailScreen.BINDINGS), ("Anywhere", self.BINDINGS)]
        self.push_screen(HelpScreen([(t, [b for b in bs if isinstance(b, Binding)]) for t, bs in groups],
                                    self.user_keymap))

    def toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_toggle_theme(self) -> None:
        self.toggle_theme()

    async def action_quit(self) -> None:
        if isinstance(self.screen, QuitScreen):
            return
        agents = sum(1 for t in self.main.table.tasks.values()
                     if t.operator_id == self.operator.id and t.status in AGENT_STATUSES)

        def chosen(choice: str | None) -> None:
            if choice is not None:
                self.run_worker(self.shutdown(stop_agents=choice == STOP_ALL), group="shutdown")

        self.push_screen(QuitScreen(agents), chosen)

    async def shutdown(self, *, stop_agents: bool = False) -> None:
        if stop_agents and self.conductor is not None:
            for task in list(self.main.table.tasks.values()):
                if task.operator_id == self.operator.id and task.status in AGENT_STATUSES:
                    try:
                        await self.conductor.stop(self.operator, task.id)
                    except FleetError as exc:
                        self.notify_error(exc, "stop")
        await self.close_engine()
        self.exit()

    async def close_engine(self) -> None:
        """Stop what this app started; close only what it opened."""
        self.workers.cancel_group(self, "engine")
        self.stop_following()
        self.stop_following("preview")
        conductor = self.conductor
        started, self._started_monitor = self._started_monitor, False
        if conductor is None:
            return
        if self._queue is not None:
            conductor.bus.unsubscribe(self._queue)
            self._queue = None
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.close()
        if self._owns_conductor:
            self._owns_conductor = False
            if self._close_engine is not None:
                await self._close_engine(conductor)
        elif started:
            await conductor.shutdown()

    async def on_unmount(self) -> None:
        await self.close_engine()
        if self._froze_heap:
            self._froze_heap = False
            gc.unfreeze()


def import_engine_here() -> None:
    """The engine's modules, imported inside the running app as if outside it: with the
    process's own sys.stdout, not Textual's capture (no .encoding; libtmux reads it at
    import, and a first spawn from the control room died of it). Imported here, after the
    first frame, rather than before the app runs: they are most of the start-up time."""
    from fleet_tui.engine.session import import_engine

    captured, sys.stdout = sys.stdout, sys.__stdout__
    try:
        import_engine()
    finally:
        sys.stdout = captured


def make_app(settings: Settings | None = None, *, conductor: FleetFace | None = None, operator: Operator | None = None,
             repo: str | None = None, banner: str = "", now: Callable[[], datetime] | None = None,
             start_monitor: bool = True, theme: str = "textual-dark", observe: bool = False,
             log_path: Path | None = None) -> FleetApp:
    """The app over an open conductor (tests, bench) or over settings (it opens and closes
    the engine itself). observe: over settings, attach to the fleet's database only; its
    conductors run elsewhere and carry out the actions (engine.observer)."""
    if settings is None:
        if conductor is None:
            raise ValueError("make_app needs settings or a conductor")
        settings = conductor.settings
    op = operator or Operator(id=settings.operator.id, tier=settings.operator.tier,
                              is_admin=settings.operator.is_admin)
    open_engine: OpenEngine | None = None
    close_engine: Callable[[FleetFace], Awaitable[None]] | None = None
    if conductor is None and observe:
        observers: list[Observer] = []  # the one this app opened, to close as what it is

        async def open_observer() -> FleetFace:
            import_engine_here()
            from fleet_tui.engine.observer.observer import Observer

            observer = await Observer.open(settings, operator=op)
            await observer.start()
            observers.append(observer)
            return observer

        async def close_observer(_: FleetFace) -> None:
            await observers.pop().close()

        open_engine, close_engine = open_observer, close_observer
    elif conductor is None:
        conductors: list[Conductor] = []

        async def open_conductor_here() -> FleetFace:
            """The engine this app owns: conductor, outbox relay and notification worker."""
            from fleet_tui.engine.kit.early_database import start_early

            start_early(settings)  # PostgreSQL starts while the engine's modules load
            import_engine_here()
            from fleet_tui.engine.session import open_conductor, start_workers

            opened = await open_conductor(settings)
            opened.workers = start_workers(opened)
            conductors.append(opened)
            return opened

        async def close_conductor_here(_: FleetFace) -> None:
            from fleet_tui.engine.session import close_conductor

            opened = conductors.pop()
            if opened.workers is not None:
                await opened.workers.stop()
            await close_conductor(opened)

        open_engine, close_engine = open_conductor_here, close_conductor_here
    return FleetApp(operator=op, conductor=conductor, open_engine=open_engine, close_engine=close_engine,
                    default_repo=repo or "", banner=banner, keymap=settings.keymap, now=now or utc_now,
                    start_monitor=start_monitor, theme=theme, log_path=log_path)
