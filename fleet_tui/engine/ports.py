"""The engine's ports: Protocols only, satisfied structurally.

The narrow collaborators a service receives instead of the whole Conductor or a bag of
parts (the conductor satisfies Workplace today; a test passes a small fake), and FleetFace: everything the faces
(ui, api, commands) ask of a fleet. The Conductor (the fleet in this process), the Observer (a
fleet whose conductors run elsewhere) and the tests' seeded fleet all satisfy it; a feature one
of them lacks is still a method there, answering None or empty, so a face never asks `getattr`
whether it exists."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Coroutine
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from fleet_tui.config import Settings
from fleet_tui.domain.models import (
    Operator,
    RuntimeKind,
    SpawnRequest,
    SpawnResult,
    StatusSummary,
    TaskDetail,
    TaskPatch,
    TaskRecord,
    Tier,
)
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.kit.bus import EventBus
from fleet_tui.infra.agents import AgentProfile
from fleet_tui.infra.git import TaskCheckout
from fleet_tui.infra.protocols import ChangeRef, Runtime
from fleet_tui.infra.secrets import SecretsProvider
from fleet_tui.infra.worktree import WorktreeManager
from fleet_tui.store.commands import Command
from fleet_tui.store.db import Database


class Workplace(Protocol):
    """Where a task's agent runs and where its work lives: its runtime, its checkout, the
    change (branch) a forge knows it by."""

    def runtime_for(self, kind: RuntimeKind | str) -> Runtime: ...

    def checkout(self, task: TaskRecord) -> TaskCheckout: ...

    def change_ref(self, task: TaskRecord) -> ChangeRef: ...


class TaskPatcher(Protocol):
    """Write fields of a task that are not its state (TaskLedger.patch; its moves are separate)."""

    async def __call__(self, task: TaskRecord, patch: TaskPatch) -> TaskRecord: ...


class Dispatch(Protocol):
    """Hand an event to the event router: the operator's route for it runs (None: no route
    applies). The watch room reaches the router through this, never through the conductor."""

    def __call__(self, event_type: str, context: dict[str, Any], *, operator_id: str,
                 trace_id: str | None = None) -> Awaitable[object | None]: ...


class AuditNote(Protocol):
    """Add one row to a task's audit trail (action and its detail)."""

    def __call__(self, task: TaskRecord, action: str, detail: dict[str, Any]) -> Awaitable[None]: ...


class Notify(Protocol):
    """Record a notification for the task's operator (the notification worker delivers it);
    a repeated dedup_key records nothing new."""

    def __call__(self, task: TaskRecord, kind: str, summary: str, *,
                 dedup_key: str | None = None) -> Awaitable[None]: ...


class Move(Protocol):
    """One guarded transition of a task (audit and outbox in its transaction), then published
    (TaskLedger.move)."""

    def __call__(self, task: TaskRecord, target: TaskStatus, patch: TaskPatch | None = None, *,
                 actor: str, reason: str | None = None) -> Awaitable[TaskRecord]: ...


class GetTask(Protocol):
    """Read a task by id as the system (any operator's task); NotFoundError when there is none."""

    def __call__(self, task_id: str) -> Awaitable[TaskRecord]: ...


class RecordFailure(Protocol):
    """Count one failed attempt of the task and keep its failure context, only while its
    retry budget lasts (the task comes back with its version bumped); None when it is spent."""

    def __call__(self, task: TaskRecord, *, context: dict[str, Any]) -> Awaitable[TaskRecord | None]: ...


class NotifyOperator(Protocol):
    """Record a notification about no task in particular for an operator (and tell the faces)."""

    def __call__(self, operator_id: str, kind: str, summary: str) -> Awaitable[None]: ...


class Spawn(Protocol):
    """An operator's spawn request through the fleet's checks (tier, budget, capacity): a
    task, or its place in the queue when the fleet is full."""

    def __call__(self, operator: Operator, request: SpawnRequest) -> Awaitable[SpawnResult]: ...


class FinishExecution(Protocol):
    """Close the attempt's execution row (usage, exit code) and tell the model's breaker."""

    def __call__(self, task: TaskRecord, *, exit_code: int | None,
                 failure: str | None = None) -> Awaitable[None]: ...


class Relaunch(Protocol):
    """Run the spawn saga again for a proposed or retrying task, as `actor`."""

    def __call__(self, task: TaskRecord, *, actor: str) -> Awaitable[TaskRecord]: ...


class Background(Protocol):
    """Run a coroutine beside the caller under the conductor's supervisor: errors are logged,
    and it is awaited (or cancelled) at shutdown."""

    def __call__(self, work: Coroutine[Any, Any, Any], *, name: str) -> None: ...


class ProfileOf(Protocol):
    """The agent profile of that name (None: the fleet's default); ValidationFailed naming
    the known ones when there is none (choice/agent_choice.py profile_named)."""

    def __call__(self, name: str | None) -> AgentProfile: ...


class ChangeRefOf(Protocol):
    """The change (repository, branch, base, worktree) a forge knows the task's work by."""

    def __call__(self, task: TaskRecord) -> ChangeRef: ...


class RateGate(Protocol):
    """An operator's spawn rate limit, taken in the routing reads' transaction (RateLimiter)."""

    async def hit(self, conn: Any, operator_id: str) -> float: ...

    def refuse_over(self, operator_id: str, wait_s: float) -> None: ...


class RoutingInputs(Protocol):
    """What choosing an agent and model reads (choice/agent_choice.py): settings, profiles,
    the model breakers, the random source of Thompson draws, the usage pauses and opt-outs
    the last decision read, and where to tell an operator their budget refused.
    AgentChooser holds them."""

    usage_pauses: dict[str, datetime]
    usage_opt_outs: frozenset[str] | None

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def profiles(self) -> dict[str, AgentProfile]: ...

    @property
    def breakers(self) -> BreakerRegistry: ...

    @property
    def rng(self) -> random.Random: ...

    @property
    def profile(self) -> ProfileOf: ...

    @property
    def notify_operator(self) -> NotifyOperator: ...


class PromptInputs(Protocol):
    """What building an agent's launch plan reads (spawn/prompting.py; PromptSources holds them)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def worktrees(self) -> WorktreeManager: ...

    @property
    def secrets(self) -> SecretsProvider: ...

    @property
    def profile(self) -> ProfileOf: ...


class CommandQueue(Protocol):
    """The queue of commands observer faces submit (fleet_commands), as one conductor takes
    them: claims lapse after ttl_s unless renewed, so a dead conductor's are retaken."""

    async def claim(self, *, ttl_s: float, limit: int) -> list[Command]: ...

    async def renew(self, ids: list[int], ttl_s: float) -> int: ...

    async def finish(self, command_id: int, *, result: dict[str, Any] | None = None,
                     error: str | None = None, error_kind: str | None = None) -> bool:
        """False when the claim was no longer ours."""

    async def delete_finished_before(self, before: datetime) -> int: ...


class TaskReader(Protocol):
    """Read one task as an operator may see it (NotFoundError otherwise)."""

    async def get(self, task_id: str, *, operator: Operator) -> TaskRecord: ...


class CommandActions(Protocol):
    """The operator actions and reads a submitted command may ask for (the conductor's)."""

    async def spawn(self, operator: Operator, request: SpawnRequest) -> SpawnResult: ...

    async def stop(self, operator: Operator, task_id: str) -> TaskRecord: ...

    async def retry(self, operator: Operator, task_id: str) -> TaskRecord: ...

    async def merge(self, operator: Operator, task_id: str) -> TaskRecord: ...

    async def delete(self, operator: Operator, task_id: str) -> None: ...

    async def diff(self, operator: Operator, task_id: str) -> str: ...

    async def logs_from(self, operator: Operator, task_id: str, cursor: int | None,
                        max_lines: int = 200) -> tuple[list[str], int]: ...


# --- the faces' view of a fleet ---------------------------------------------------------


class Health(Protocol):
    """The in-process loop's figures: the conductor's monitor, an observer's stand-in."""

    def health(self) -> dict[str, Any]: ...


class Headroom(Protocol):
    """The governor's figures a face shows: one operator's limit, the fleet's capacity."""

    fleet_capacity: int

    def limit_for(self, tier: Tier | str) -> int: ...


class Closable(Protocol):
    async def close(self) -> None: ...


@runtime_checkable
class FleetFace(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def governor(self) -> Headroom: ...

    @property
    def monitor(self) -> Health | None:
        """None until start(), and after shutdown()."""

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self, *, monitor: bool = True) -> None: ...

    async def shutdown(self) -> None: ...

    async def change_feed(self, operator: Operator) -> Closable | None:
        """A started feed of other processes' changes onto bus (the caller closes it), or
        None when the fleet feeds its bus itself."""

    # --- reads --------------------------------------------------------------------------
    async def status(self, operator: Operator, *, all_operators: bool = False, limit: int = 500) -> StatusSummary: ...

    async def detail(self, operator: Operator, task_id: str) -> TaskDetail: ...

    async def diff(self, operator: Operator, task_id: str) -> str: ...

    async def logs(self, operator: Operator, task_id: str, n: int = 200) -> list[str]: ...

    async def logs_from(self, operator: Operator, task_id: str, cursor: int | None,
                        max_lines: int = 200) -> tuple[list[str], int]: ...

    def follow_logs(self, operator: Operator, task_id: str, *, after: int | None = None) -> AsyncIterator[str]: ...

    async def output_host(self, operator: Operator, task_id: str) -> str | None:
        """The host whose conductor holds the task's output when it is not here, else None."""

    async def attach_elsewhere(self, task: TaskRecord) -> str | None:
        """What to run on another host to attach to the agent, or None to attach from here."""

    async def fleet_health(self) -> dict[str, Any]:
        """The fleet's figures (engine.metrics names them); empty when there are none."""

    async def spawn_field_errors(self, request: SpawnRequest) -> dict[str, str]:
        """Every fleet rule the request breaks, by field; empty when none (or not checked here)."""

    # --- operator actions ---------------------------------------------------------------
    async def spawn(self, operator: Operator, request: SpawnRequest) -> SpawnResult: ...

    async def stop(self, operator: Operator, task_id: str) -> TaskRecord: ...

    async def retry(self, operator: Operator, task_id: str, *, allow: list[str] | None = None) -> TaskRecord: ...

    async def answer(self, operator: Operator, task_id: str, text: str) -> TaskRecord: ...

    async def merge(self, operator: Operator, task_id: str) -> TaskRecord: ...

    async def delete(self, operator: Operator, task_id: str) -> None: ...
