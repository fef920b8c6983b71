"""The engine's ports: the narrow collaborators a service receives instead of the whole
Conductor. Protocols only, satisfied structurally (the conductor satisfies Workplace today;
a test passes a small fake)."""

from __future__ import annotations

import random
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Protocol

from fleet_tui.config import Settings
from fleet_tui.domain.models import RuntimeKind, TaskPatch, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.kit.bus import EventBus
from fleet_tui.infra.agents import AgentProfile
from fleet_tui.infra.git import TaskCheckout
from fleet_tui.infra.protocols import ChangeRef, Forge, Runtime
from fleet_tui.infra.secrets import SecretsProvider
from fleet_tui.infra.worktree import WorktreeManager
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry


class Workplace(Protocol):
    """Where a task's agent runs and where its work lives: its runtime, its checkout, the
    change (branch) a forge knows it by."""

    def runtime_for(self, kind: RuntimeKind | str) -> Runtime: ...

    def checkout(self, task: TaskRecord) -> TaskCheckout: ...

    def change_ref(self, task: TaskRecord) -> ChangeRef: ...


class TaskPatcher(Protocol):
    """Write fields of a task that are not its state (the ledger's moves are separate)."""

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


class ReviewParts(Protocol):
    """What the review pipeline uses of the engine's parts."""

    @property
    def forge(self) -> Forge: ...

    @property
    def secrets(self) -> SecretsProvider: ...

    def profile(self, name: str | None) -> AgentProfile: ...

    async def patch(self, task: TaskRecord, patch: TaskPatch) -> TaskRecord: ...

    async def notify(self, task: TaskRecord, kind: str, summary: str, *, dedup_key: str | None = None) -> None: ...


class ReviewHost(Protocol):
    """What the review pipeline drives: the task's moves and audit, its change, the faces'
    bus. The conductor satisfies it; the pipeline never sees the rest of it."""

    @property
    def parts(self) -> ReviewParts: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def registry(self) -> TaskRegistry: ...

    def change_ref(self, task: TaskRecord) -> ChangeRef: ...

    async def move(self, task: TaskRecord, target: TaskStatus, patch: TaskPatch | None = None, *,
                   actor: str, reason: str | None = None) -> TaskRecord: ...

    async def audit(self, task: TaskRecord, action: str, detail: dict[str, Any]) -> None: ...


class RoutingParts(Protocol):
    """What choosing an agent and model reads (choice/agent_choice.py): settings, profiles,
    the model breakers, the random source of Thompson draws, the usage pauses and opt-outs
    the last decision read, and where to tell an operator their budget refused."""

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

    def profile(self, name: str | None) -> AgentProfile: ...

    async def notify_operator(self, operator_id: str, kind: str, summary: str) -> None: ...


class PromptParts(Protocol):
    """What building an agent's launch plan reads (spawn/prompting.py)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def worktrees(self) -> WorktreeManager: ...

    @property
    def secrets(self) -> SecretsProvider: ...

    def profile(self, name: str | None) -> AgentProfile: ...
