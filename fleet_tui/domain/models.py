"""Pydantic models shared by every room: the task record and what is asked of the engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from fleet_tui.domain.status import TaskStatus


class Tier(StrEnum):
    """Conviction tiers, ascending."""

    OBSERVER = "observer"
    PARTICIPANT = "participant"
    BUILDER = "builder"
    ARCHITECT = "architect"
    SOVEREIGN = "sovereign"

    @property
    def rank(self) -> int:
        return list(Tier).index(self)

    def at_least(self, other: Tier | str) -> bool:
        return self.rank >= Tier(other).rank


class TaskType(StrEnum):
    BUG_FIX = "bug_fix"
    FEATURE = "feature"
    REFACTOR = "refactor"
    REVIEW = "review"
    DOCS = "docs"


class RuntimeKind(StrEnum):
    TMUX = "tmux"
    DOCKER = "docker"


class CIStatus(StrEnum):
    PENDING = "pending"
    PASSING = "passing"
    FAILING = "failing"


class Operator(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@:-]+$")
    tier: Tier = Tier.OBSERVER
    is_admin: bool = False


# the engine's own identity: its scheduled and policy-driven actions (monitor, routes, duties)
SYSTEM = Operator(id="system", tier=Tier.SOVEREIGN, is_admin=True)


class Lease(BaseModel):
    """A conductor's claim on a task: writes made under it check owner and epoch."""

    model_config = ConfigDict(frozen=True)

    owner: str
    epoch: int


class TaskRecord(BaseModel):
    """One row of fleet_tasks, as the engine and the faces see it."""

    model_config = ConfigDict(frozen=True)

    id: str
    operator_id: str
    status: TaskStatus
    version: int
    description: str
    repo: str
    base_branch: str
    branch: str | None = None
    task_type: TaskType = TaskType.FEATURE
    agent: str | None = None
    model: str | None = None
    runtime: RuntimeKind = RuntimeKind.TMUX
    priority: int = 50
    retry_count: int = 0
    max_retries: int = 3
    idempotency_key: str | None = None
    worktree_path: str | None = None
    tmux_session: str | None = None
    container_id: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    ci_status: CIStatus | None = None
    review_status: str | None = None
    review_verdicts: list[dict[str, Any]] = Field(default_factory=list)
    failure_reason: str | None = None
    failure_context: dict[str, Any] | None = None
    exit_code: int | None = None
    needs_input: bool = False
    trace_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    spawned_at: datetime | None = None
    completed_at: datetime | None = None

    # TRY, the same in every face (UI column, CLI line, API and --json fields): the attempt
    # running or last run, 1-based, out of the attempts the retry budget allows.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def attempt(self) -> int:
        return self.retry_count + 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    @property
    def is_live(self) -> bool:
        from fleet_tui.domain.status import LIVE_STATUSES

        return self.status in LIVE_STATUSES


class TaskPatch(BaseModel):
    """Metadata a transition may carry. Only fields that are set are written."""

    model_config = ConfigDict(extra="forbid")

    branch: str | None = None
    agent: str | None = None
    model: str | None = None
    worktree_path: str | None = None
    tmux_session: str | None = None
    container_id: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    ci_status: CIStatus | None = None
    review_status: str | None = None
    review_verdicts: list[dict[str, Any]] | None = None
    failure_reason: str | None = None
    failure_context: dict[str, Any] | None = None
    exit_code: int | None = None
    needs_input: bool | None = None
    metadata: dict[str, Any] | None = None
    spawned_at: datetime | None = None
    completed_at: datetime | None = None

    def set_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


TASK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # what every face accepts as a task id
_IDEMPOTENCY_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,200}\Z")


class SpawnRequest(BaseModel):
    """What an operator asks for. Validation messages name the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str = Field(min_length=1, max_length=10_000)
    repo: str = Field(min_length=1, max_length=4096)
    base_branch: str | None = Field(default=None, max_length=128)
    branch: str | None = Field(default=None, max_length=128)
    task_type: TaskType = TaskType.FEATURE
    agent: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9_-]+$")
    model: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")
    runtime: RuntimeKind | None = None
    priority: int = Field(default=50, ge=0, le=100)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    idempotency_key: str | None = None

    @field_validator("idempotency_key")
    @classmethod
    def _key_shape(cls, value: str | None) -> str | None:
        if value is not None and not _IDEMPOTENCY_RE.match(value):
            raise ValueError("must be 1-200 characters of letters, digits and ._:/-")
        return value

    @field_validator("description")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class SpawnResult(BaseModel):
    """Admitted (task set), or queued over fleet capacity (task None until room frees)."""

    task: TaskRecord | None = None
    created: bool = True
    queued: bool = False
    queue_id: int | None = None
    notice: str | None = None  # what the operator should know, e.g. why the demo agent runs it


class TaskQuery(BaseModel):
    operator_id: str | None = None
    statuses: list[TaskStatus] | None = None
    agent: str | None = None
    task_type: TaskType | None = None
    since: datetime | None = None
    limit: int = Field(default=50, ge=1, le=10_000)


@dataclass
class TaskDetail:
    """One task as a face shows it: the record, its audit trail and its attempts."""

    task: TaskRecord
    audit: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)


class StatusSummary(BaseModel):
    operator_id: str
    tier: Tier
    counts: dict[str, int] = Field(default_factory=dict)
    live: int = 0
    limit: int = 0
    fleet_live: int = 0
    fleet_capacity: int = 0
    tasks: list[TaskRecord] = Field(default_factory=list)
