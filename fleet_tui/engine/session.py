"""Open and close a whole engine: the database (embedded unless DATABASE_URL), the real
parts, the conductor. Faces use this and nothing below it."""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import signal
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from collections.abc import Callable, Coroutine

from fleet_tui.config import Settings
from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import SYSTEM, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.api_support import ApiSupport
from fleet_tui.engine.workers.command_worker import CommandWorker, Executor, StoreCommandQueue
from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.events.service import RouterService
from fleet_tui.engine.events.step_services import StepServices
from fleet_tui.engine.workers.notifier import NotificationWorker
from fleet_tui.engine.workers.outbox_relay import OnPark, OutboxRelay, build_sinks
from fleet_tui.engine.parts import build_parts
from fleet_tui.engine.review.host import ReviewHost
from fleet_tui.engine.review.pipeline import pipeline_source
from fleet_tui.engine.spawn.prompting import resume_plan
from fleet_tui.engine.watch.monitor import Monitor
from fleet_tui.engine.ledger.tracing import configure_logging

if TYPE_CHECKING:
    from fleet_tui.store.db import Database
    from fleet_tui.store.migrations import MigrationState

T = TypeVar("T")

log = logging.getLogger(__name__)

# The rooms whose modules the engine imports where it first uses them (runtimes, forges,
# channels, sinks, reviewers), and the libraries it imports the same way.
ENGINE_PACKAGES = ("fleet_tui.store", "fleet_tui.infra", "fleet_tui.engine")
LAZY_LIBRARIES = ("httpx", "nats")


def import_engine() -> None:
    """Import now everything the engine would import on first use. A face that takes over
    sys.stdout calls this before it does: inside a running Textual app sys.stdout is
    Textual's capture, which has no .encoding, and libtmux reads sys.stdout.encoding at
    import (the first spawn from the control room died of it). The import rules test
    checks that every deferred import of the engine is covered."""
    for name in ENGINE_PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            importlib.import_module(module.name)
    for name in LAZY_LIBRARIES:
        importlib.import_module(name)


def build_conductor(settings: Settings, db: Database, **overrides: Any) -> Conductor:
    """The one place a Conductor is made (faces, tests and benches): its parts from settings,
    and the hooks that tie it to the services it must not call upward."""
    conductor = Conductor(build_parts(settings, db, **overrides))
    conductor.ledger.on_terminal.append(partial(route_terminal, conductor))
    conductor.make_monitor = partial(build_monitor, conductor)
    conductor.make_router = partial(build_router, conductor)
    return conductor


def build_router(conductor: Conductor, *, clock: Callable[[], float] = time.monotonic) -> RouterService:
    """The event router, its steps given only what they use of the conductor and its parts
    (built on first use: a part a test swaps in before then is the one the steps use)."""
    return RouterService.build(conductor.parts.db, services=step_services(conductor), clock=clock)


def step_services(conductor: Conductor) -> StepServices:
    parts, registry, ledger = conductor.parts, conductor.registry, conductor.ledger
    return StepServices(
        db=parts.db, get_task=partial(registry.get, operator=SYSTEM), move=ledger.move, patch=ledger.patch,
        record_failure=ledger.record_failure, notify=parts.notices.notify,
        notify_operator=parts.notices.notify_operator, publish=conductor.bus.publish, spawn=conductor.spawn,
        reviews=pipeline_source(parts.reviews, conductor.settings.review), review_host=review_host(conductor),
        place=parts.places, forge=parts.forge, worktrees=parts.worktrees,
        retry=conductor.settings.retry, headroom=conductor.governor, count_live=registry.count_all_active)


def review_host(conductor: Conductor) -> ReviewHost:
    """What the review pipeline drives, from the ledger and the parts (no conductor in it)."""
    parts, ledger = conductor.parts, conductor.ledger
    return ReviewHost(
        move=ledger.move, patch=ledger.patch, audit=ledger.audit,
        get_task=partial(conductor.registry.get, operator=SYSTEM), notify=parts.notices.notify,
        publish=conductor.bus.publish, change_ref=parts.places.change_ref, forge=parts.forge,
        profile=parts.profile, secrets=parts.secrets)


def build_monitor(conductor: Conductor) -> Monitor:
    """The monitor, given only what it uses of the conductor and its parts (built at start:
    what a test swaps in before then, e.g. the forge, is what the monitor watches with)."""
    parts = conductor.parts
    return Monitor(
        settings=conductor.settings, conductor_id=conductor.conductor_id, db=parts.db, place=parts.places,
        forge=parts.forge, worktrees=parts.worktrees, profiles=parts.profiles, move=parts.ledger.move,
        patch=parts.ledger.patch, notify=parts.notices.notify, audit=parts.ledger.audit,
        finish_execution=parts.executions.finish,
        list_live=lambda: conductor.registry.list_live(), spawning_here=conductor.spawning_here, headroom=conductor.governor,
        drain_queue=lambda room: conductor.queue.drain(conductor.admit_queued, room),
        relaunch=conductor.launch,
        # the router is built on first use: looked up when a route is dispatched, not now
        dispatch=lambda event_type, context, **how: conductor.router.dispatch(event_type, context, **how),
        plan_resume=partial(resume_plan, parts.prompting), reviews_on=parts.reviews is not None,
        observe_cycle_s=conductor.telemetry.monitor_cycle.observe,
        publish=conductor.bus.publish, background=conductor.background)


def api_support_for(conductor: Conductor) -> ApiSupport:
    """What the HTTP face needs beyond operator actions, given only the parts it uses."""
    return ApiSupport(
        db=conductor.parts.db, publish=conductor.bus.publish, background=conductor.background,
        # the router is built on first use: looked up when used, not now
        dispatch=lambda event_type, context, **how: conductor.router.dispatch(event_type, context, **how),
        breakers=lambda: conductor.router.breakers, process=conductor)


def route_terminal(conductor: Conductor, task: TaskRecord, status: TaskStatus, reason: str | None) -> None:
    """A task that ended: the operator's route for task.<status> runs beside the caller."""
    conductor.background(conductor.router.dispatch(
        f"task.{status}", {"task_id": task.id, "status": str(status), "reason": reason},
        operator_id=task.operator_id, trace_id=task.trace_id), name=f"route-{status}-{task.id}")


async def open_conductor(settings: Settings, **overrides: Any) -> Conductor:
    from fleet_tui.store.db import Database

    db = await Database.open(settings)
    try:
        return build_conductor(settings, db, **overrides)
    except BaseException:
        await db.close()
        raise


async def close_conductor(conductor: Conductor) -> None:
    await conductor.shutdown()
    for part in (conductor.parts.forge, *conductor.parts.runtimes.built.values()):
        closer = getattr(part, "aclose", None)
        if closer is not None:
            await closer()
    await conductor.parts.db.close()


@dataclass
class Workers:
    """The outbox relay, the notification worker and the command worker (observers'
    commands) running beside a conductor."""

    relay: OutboxRelay
    notifier: NotificationWorker
    ops: asyncio.Task[None] | None = None
    ops_stop: asyncio.Event | None = None
    commands: CommandWorker | None = None

    async def stop(self, timeout_s: float = 10.0) -> None:
        if self.commands is not None:  # first: the commands in hand still need the relay
            await self.commands.stop(timeout_s)
        if self.ops_stop is not None and self.ops is not None:
            self.ops_stop.set()
            await asyncio.wait([self.ops], timeout=timeout_s)
        await asyncio.gather(self.relay.stop(timeout_s), self.notifier.stop(timeout_s))


def command_worker(conductor: Conductor, *, wake_url: str | None = None, poll_s: float = 2.0) -> CommandWorker:
    """The worker that runs observers' commands through this conductor's operator actions,
    claiming them for as long as the conductor's leases last."""
    return CommandWorker(
        queue=StoreCommandQueue(conductor.parts.db, conductor.conductor_id),
        executor=Executor(actions=conductor, tasks=conductor.registry, runtime_for=conductor.runtime_for),
        conductor_id=conductor.conductor_id, ttl_s=conductor.settings.monitor.lease_ttl_s,
        wake_url=wake_url, poll_s=poll_s)


def start_workers(conductor: Conductor, *, on_park: OnPark | None = None) -> Workers:
    """Start the outbox relay (NOTIFY, NATS, webhooks as configured), the notification
    worker and the command worker in this loop; each wakes on commit through LISTEN. The UI
    calls this too."""
    db = conductor.parts.db
    settings = conductor.settings
    relay = OutboxRelay(db, settings.outbox, build_sinks(db, settings.outbox), on_park=on_park,
                        wake_url=db.app_url, observe_lag=conductor.telemetry.outbox_lag.observe)
    notifier = NotificationWorker(db, settings.notifications, wake_url=db.app_url,
                                  poll_s=settings.outbox.poll_s)
    commands = command_worker(conductor, wake_url=db.app_url, poll_s=max(settings.outbox.poll_s, 1.0))
    relay.start()
    notifier.start()
    commands.start()
    from fleet_tui.engine.ops.duties import attach_log_sink, run_ops

    ops_stop = asyncio.Event()
    monitor = conductor.settings.monitor
    ops = asyncio.create_task(run_ops(
        db=conductor.parts.db, stop=ops_stop, handler=attach_log_sink(conductor.parts.db),
        interval_s=monitor.ops_interval_s, log_retention_days=monitor.log_retention_days,
        breakers=conductor.router.breakers, retry_dead_letters=conductor.router.dlq.retry_due,
        sweep=conductor.sweep, sweep_interval_s=monitor.sweep_interval_s), name="fleet-ops")
    return Workers(relay, notifier, ops, ops_stop, commands)


Face = Callable[[Conductor, asyncio.Event], Coroutine[Any, Any, None]]  # create_task takes a coroutine


async def run_headless(settings: Settings, *, stop: asyncio.Event | None = None,
                       face: Face | None = None) -> None:
    """The conductor and its monitor until SIGTERM/SIGINT; agents keep running after.

    `face` (the HTTP API; the engine may not import it) runs in the same loop and is
    handed the stop event: it drains its in-flight requests before the loops stop."""
    configure_logging(json_lines=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conductor = await open_conductor(settings)
    face_task: asyncio.Task[None] | None = None
    workers: Workers | None = None
    try:
        await conductor.start()
        workers = start_workers(conductor)
        if face is not None:
            face_task = asyncio.create_task(face(conductor, stop), name="fleet-face")
        log.info("headless conductor running", extra={"operator": settings.operator.id})
        stop_wait = asyncio.ensure_future(stop.wait())
        waiting = {stop_wait} if face_task is None else {stop_wait, face_task}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        log.info("shutting down: requests drain, loops stop, agents keep running")
        stop.set()
        if face_task is not None:
            await face_task  # re-raises a face that failed (e.g. the port is taken)
    finally:
        if face_task is not None and not face_task.done():
            face_task.cancel()
        if workers is not None:
            await workers.stop()
        await close_conductor(conductor)
        log.info("headless conductor stopped")


# --- the database's schema (`fleet-tui db`): before, or instead of, any engine -------------


def check_migration_target(target: int) -> None:
    """ValidationFailed("to", ...) unless target is 0 or a shipped migration's number."""
    from fleet_tui.store import migrations

    migrations.check_target(target)


def database_place(settings: Settings) -> str:
    """Where the migrations run, for a person: the URL without its password, or the
    embedded server's directory."""
    from fleet_tui.store.errors import redact_url

    url = settings.database_url
    return redact_url(url) if url else f"embedded server in {settings.data_dir / 'postgres'}"


async def _as_owner(settings: Settings, action: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """action(owner_url) against DATABASE_URL, or the embedded server (started for it)."""
    from fleet_tui.store import embedded
    from fleet_tui.store.db import resolve_owner_url

    owner_url, server = await resolve_owner_url(settings)
    try:
        return await action(owner_url)
    finally:
        if server is not None:
            await embedded.stop(server)


async def upgrade_database(settings: Settings, target: int | None = None) -> list[int]:
    """Apply the pending migrations (up to target) and set up the app role: the versions applied."""
    from fleet_tui.store import migrations
    from fleet_tui.store.db import prepare_database

    async def act(owner_url: str) -> list[int]:
        before = {s.version for s in await migrations.status(owner_url) if s.applied_at}
        await prepare_database(settings, owner_url, target)
        after = {s.version for s in await migrations.status(owner_url) if s.applied_at}
        return sorted(after - before)

    return await _as_owner(settings, act)


async def downgrade_database(settings: Settings, target: int | None = None) -> list[int]:
    """Revert migrations down to target (default: the newest one alone): the versions reverted."""
    from fleet_tui.store import migrations

    async def act(owner_url: str) -> list[int]:
        to = target
        if to is None:
            applied = [s.version for s in await migrations.status(owner_url) if s.applied_at]
            if not applied:
                return []
            to = max([v for v in applied if v < max(applied)], default=0)
        if to < 0:
            raise ValidationFailed("to", "must be 0 or a migration number")
        return await migrations.downgrade(owner_url, to)

    return await _as_owner(settings, act)


async def migration_status(settings: Settings) -> list[MigrationState]:
    """Every shipped migration: when it was applied (None: pending) and whether its file
    still matches what was applied (checksum_ok; None when not applied)."""
    from fleet_tui.store import migrations

    return await _as_owner(settings, migrations.status)
