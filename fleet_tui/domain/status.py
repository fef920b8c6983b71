"""The task lifecycle: twelve statuses and the only transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from collections.abc import Mapping

from fleet_tui.domain.errors import InvalidTransitionError


class TaskStatus(StrEnum):
    PROPOSED = "proposed"
    SPAWNING = "spawning"
    RUNNING = "running"
    PR_CREATED = "pr_created"
    REVIEWING = "reviewing"
    READY = "ready"
    MERGED = "merged"
    FAILED = "failed"
    RETRYING = "retrying"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    CANCELLED = "cancelled"


S = TaskStatus

TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = MappingProxyType({
    S.PROPOSED: frozenset({S.SPAWNING, S.CANCELLED}),
    S.SPAWNING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.PR_CREATED, S.FAILED, S.CANCELLED}),
    S.PR_CREATED: frozenset({S.REVIEWING, S.FAILED, S.CANCELLED}),
    S.REVIEWING: frozenset({S.READY, S.REJECTED, S.CANCELLED}),
    S.REJECTED: frozenset({S.RETRYING, S.ABANDONED, S.CANCELLED}),
    S.FAILED: frozenset({S.RETRYING, S.ABANDONED, S.CANCELLED}),
    S.RETRYING: frozenset({S.SPAWNING, S.ABANDONED, S.CANCELLED}),
    S.READY: frozenset({S.MERGED, S.ABANDONED, S.CANCELLED}),
    S.MERGED: frozenset(),
    S.ABANDONED: frozenset(),
    S.CANCELLED: frozenset(),
})

TERMINAL_STATUSES: frozenset[TaskStatus] = frozenset({S.MERGED, S.ABANDONED, S.CANCELLED})
# Live = holds a slot under the governor: everything not terminal.
LIVE_STATUSES: frozenset[TaskStatus] = frozenset(set(S) - TERMINAL_STATUSES)
# Statuses in which an agent process is expected to exist.
PROCESS_STATUSES: frozenset[TaskStatus] = frozenset({S.RUNNING})
# An agent runs, or is about to start: what "stop agents" stops and a followed log waits on.
# A change waiting for CI, review or a merge has no agent.
AGENT_STATUSES: frozenset[TaskStatus] = frozenset({S.PROPOSED, S.SPAWNING, S.RUNNING, S.RETRYING})

# the notification each terminal status sends its operator: (kind, summary); written by the
# engine when the task ends and checked by the outbox relay's terminal guard
TERMINAL_NOTIFICATION: dict[TaskStatus, tuple[str, str]] = {
    S.MERGED: ("completed", "merged into base"),
    S.ABANDONED: ("abandoned", "retry budget spent or abandoned"),
    S.CANCELLED: ("cancelled", "stopped by the operator"),
}


def is_terminal(status: TaskStatus | str) -> bool:
    return TaskStatus(status) in TERMINAL_STATUSES


def can_transition(current: TaskStatus | str, target: TaskStatus | str) -> bool:
    return TaskStatus(target) in TRANSITIONS[TaskStatus(current)]


def check_transition(current: TaskStatus | str, target: TaskStatus | str) -> None:
    """Raise InvalidTransitionError unless current -> target is in the map."""
    if not can_transition(current, target):
        allowed = ", ".join(sorted(TRANSITIONS[TaskStatus(current)])) or "none (terminal)"
        raise InvalidTransitionError(
            f"cannot move a task from {current} to {target}; allowed from {current}: {allowed}",
            current=str(current),
            target=str(target),
        )
