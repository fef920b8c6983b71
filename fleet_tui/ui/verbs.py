"""Which task verbs apply to which task (check_action uses this to hide the others)."""

from __future__ import annotations

from fleet_tui.domain.models import RuntimeKind, TaskRecord
from fleet_tui.domain.status import LIVE_STATUSES, TERMINAL_STATUSES, TaskStatus

TASK_VERBS = frozenset({"detail", "logs", "diff", "attach", "stop", "retry", "delete", "merge"})


def applies(verb: str, task: TaskRecord | None) -> bool:
    if task is None:
        return False
    if verb in ("detail", "logs"):
        return True
    if verb == "diff":
        return task.branch is not None
    if verb == "attach":
        # an agent process exists only while running (tmux session or container)
        if task.status != TaskStatus.RUNNING:
            return False
        return task.container_id is not None if task.runtime == RuntimeKind.DOCKER else True
    if verb == "stop":
        return task.status in LIVE_STATUSES
    if verb == "retry":
        return task.status in (TaskStatus.FAILED, TaskStatus.REJECTED)
    if verb == "merge":
        return task.status == TaskStatus.READY
    if verb == "delete":
        return task.status in TERMINAL_STATUSES
    return True


def attach_command(task: TaskRecord, tmux_socket: str) -> list[str]:
    """The command that puts the operator's terminal on the agent."""
    if task.runtime == RuntimeKind.DOCKER and task.container_id:
        return ["docker", "exec", "-it", task.container_id, "sh"]
    session = task.tmux_session or f"fleet-{task.id}"
    return ["tmux", "-L", tmux_socket, "attach-session", "-t", f"={session}"]
