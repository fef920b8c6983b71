"""What the built-in steps use of the engine, and nothing more: the composition root
(engine/session.py) fills it from the ledger and the engine's parts; a test fills it with small fakes. A
router without it runs only the steps that need no engine (run_command, call_webhook)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleet_tui.config import RetrySettings
from fleet_tui.engine.kit.bus import Event
from fleet_tui.engine.ports import (
    GetTask,
    Headroom,
    Move,
    Notify,
    NotifyOperator,
    RecordFailure,
    Spawn,
    TaskPatcher,
    Workplace,
)
from fleet_tui.infra.protocols import Forge
from fleet_tui.infra.worktree import WorktreeManager
from fleet_tui.store.db import Database

if TYPE_CHECKING:
    from fleet_tui.engine.review.host import ReviewHost
    from fleet_tui.engine.review.pipeline import ReviewPipeline


@dataclass(frozen=True)
class StepServices:
    db: Database  # the operator's identity (spawn_agent), the usage-limit opt-outs (retry)
    get_task: GetTask  # the task a step is about, read as the system
    # the task's state: its guarded moves, its other fields, its failure count
    move: Move
    patch: TaskPatcher
    record_failure: RecordFailure
    notify: Notify
    notify_operator: NotifyOperator  # a route's notification about no task
    publish: Callable[[Event], None]  # the faces' bus
    spawn: Spawn  # spawn_agent's request, with the operator's checks
    # review steps: the pipeline (the configured one, else the built-in reviewers, looked up
    # when a step runs) and what it drives
    reviews: Callable[[], ReviewPipeline]
    review_host: ReviewHost
    # capture_failure: where the task's agent ran and its work lives
    place: Workplace
    forge: Forge
    worktrees: WorktreeManager
    # retry_or_abandon: the policy, the fleet's load (live tasks over its capacity)
    retry: RetrySettings
    headroom: Headroom
    count_live: Callable[[], Awaitable[int]]
