"""Which task verbs apply to which task (check_action uses this to hide the others)."""

from __future__ import annotations

import os

from textual import events
from textual.screen import Screen

from fleet_tui.domain.models import RuntimeKind, TaskRecord
from fleet_tui.domain.status import LIVE_STATUSES, TERMINAL_STATUSES, TaskStatus
from fleet_tui.ui.room import control_room

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


def say_why_refused(screen: Screen[None], event: events.Key, task: TaskRecord | None) -> None:
    """A task verb's key that check_action kept from running (it does not apply to task)
    says why in one line instead of doing nothing."""
    for binding in screen._bindings.key_to_bindings.get(event.key, ()):
        if binding.action in TASK_VERBS and not applies(binding.action, task):
            event.stop()
            screen.notify(why_not(binding.action, task), title=binding.description, severity="warning", timeout=4)
            return


class TaskVerbActions(Screen[None]):
    """A screen's stop, retry, delete and merge actions on the task verb_task() names,
    through the control room's task_verb (which asks first where confirm.QUESTIONS says so)."""

    every_verb = False  # set by VerbFooter while it makes a key for every verb

    def verb_task(self) -> TaskRecord | None:
        raise NotImplementedError

    def action_stop(self) -> None:
        self._task_verb("stop")

    def action_retry(self) -> None:
        self._task_verb("retry")

    def action_delete(self) -> None:
        self._task_verb("delete")

    def action_merge(self) -> None:
        self._task_verb("merge")

    def _task_verb(self, verb: str) -> None:
        task = self.verb_task()
        if task is not None:
            control_room(self.app).task_verb(verb, task)


RETURN_HINT = "detach with Ctrl-b d to return to fleet-tui"
SHELL_RETURN_HINT = "a shell in the agent's container: type exit (or press Ctrl-d) to return to fleet-tui"


def return_hint(argv: list[str]) -> str:
    """How the operator comes back from the attach command: a tmux client detaches (the
    agents' tmux server runs with no config: prefix Ctrl-b); a container shell (docker exec,
    not docker attach: no detach keys) is left with `exit`."""
    return RETURN_HINT if argv[:1] == ["tmux"] else SHELL_RETURN_HINT


def with_return_hint(argv: list[str]) -> list[str]:
    """The attach command, telling the operator on arrival how to come back: tmux shows it
    on the agent's status line; the caller prints it above a container's shell prompt."""
    if argv[:1] == ["tmux"]:
        return [*argv, ";", "display-message", "-d", "8000", RETURN_HINT]
    return argv


def outside_tmux() -> dict[str, str]:
    """This environment without TMUX: attaching from inside a tmux pane is not nesting by
    mistake, it is the operator's terminal handed to the agent's session."""
    return {k: v for k, v in os.environ.items() if k != "TMUX"}


def attach_command(task: TaskRecord, tmux_socket: str) -> list[str]:
    """The command that puts the operator's terminal on the agent."""
    if task.runtime == RuntimeKind.DOCKER and task.container_id:
        return ["docker", "exec", "-it", task.container_id, "sh"]
    session = task.tmux_session or f"fleet-{task.id}"
    return ["tmux", "-L", tmux_socket, "attach-session", "-t", f"={session}"]
