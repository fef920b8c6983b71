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


def why_not(verb: str, task: TaskRecord | None) -> str:
    """One line saying why `verb` does not apply to `task` (applies() said no)."""
    if task is None:
        return "no task selected"
    name = f"task {task.id} is {task.status}"
    if verb == "diff":
        return f"task {task.id} has no branch yet: there is no change to show"
    if verb == "attach":
        if task.status == TaskStatus.RUNNING:
            return f"task {task.id} has no container yet: nothing to attach to"
        return f"{name}: no agent is running to attach to"
    if verb == "stop":
        return f"{name}: it has finished, there is nothing to stop"
    if verb == "retry":
        return f"{name}: only a failed or rejected task can be retried"
    if verb == "merge":
        return f"{name}: only a ready task can be merged"
    if verb == "delete":
        return f"{name}: only a finished task can be deleted (stop it first)"
    return f"{verb} does not apply to task {task.id}"


def attach_command(task: TaskRecord, tmux_socket: str) -> list[str]:
    """The command that puts the operator's terminal on the agent."""
    if task.runtime == RuntimeKind.DOCKER and task.container_id:
        return ["docker", "exec", "-it", task.container_id, "sh"]
    session = task.tmux_session or f"fleet-{task.id}"
    return ["tmux", "-L", tmux_socket, "attach-session", "-t", f"={session}"]
