"""The small Protocols the engine drives. One real implementation each lives in infra/;
fakes, where a test needs one, live in tests/."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable
from collections.abc import AsyncIterator

from fleet_tui.domain.models import CIStatus, RuntimeKind

PromptVia = Literal["stdin", "file"]


# --- runtimes (tmux, docker) -------------------------------------------------------------

@dataclass(frozen=True)
class AgentLaunch:
    """Everything a runtime needs to start one agent. argv never contains the prompt."""

    task_id: str
    workdir: Path
    argv: list[str]
    prompt: str
    prompt_via: PromptVia = "stdin"
    env: dict[str, str] = field(default_factory=dict, repr=False)  # secrets: never logged
    log_path: Path | None = None
    # the worktree's admin dir and the repository's common dir, from the task record (a
    # container mounts these, never what the worktree's .git file says)
    git_admin: Path | None = None
    git_common: Path | None = None
    git_branch: str | None = None  # the one ref the agent may move
    stream: str | None = None  # the CLI's JSON event stream, rendered by the launcher
    agent: str | None = None  # the profile's name: picks its image (runtime.docker_images)
    egress: tuple[str, ...] = ()  # the profile's endpoints, host:port (infra/egress.py)
    # no process of this task was ever started (it was just admitted): nothing to look for
    first_start: bool = False
    # a session the runtime opened ahead, while the worktree was made (TmuxRuntime.prestart):
    # its launcher waits for this launch
    early: object | None = None


@dataclass(frozen=True)
class ProcessState:
    """What a runtime knows of one agent process, alive or exited."""

    task_id: str
    ref: str  # tmux session name or container id
    alive: bool
    exit_code: int | None = None
    oom_killed: bool = False


@runtime_checkable
class Runtime(Protocol):
    kind: RuntimeKind

    async def spawn(self, launch: AgentLaunch) -> ProcessState: ...
    async def check_available(self, agent: str | None = None) -> None:
        """Raise RuntimeUnavailableError (one line: what is unreachable or missing, and what
        to do) when this runtime cannot start this agent now (docker: the engine, the image)."""
        ...
    async def is_alive(self, task_id: str) -> bool: ...
    async def exit_status(self, task_id: str) -> ProcessState | None: ...
    async def kill(self, task_id: str) -> None: ...
    async def release(self, task_id: str) -> None:
        """What an exited agent left running here (a tmux session's dead pane and its log
        pipe) goes; its output stays readable. Never touches a live agent."""
        ...
    async def forget(self, task_id: str) -> None:
        """Everything this runtime keeps for a deleted task goes: its process, session or
        container, the log piped from it, and the log itself."""
        ...
    async def tail(self, task_id: str, n: int = 100) -> list[str]: ...
    async def read_from(self, task_id: str, cursor: int | None, max_lines: int) -> tuple[list[str], int]:
        """Up to max_lines complete lines after `cursor` (None: the last max_lines) and the
        cursor just after them, for the next read. A cursor is the runtime's own
        non-negative int (0: the log's start); only the runtime that gave it reads it."""
        ...
    def stream(self, task_id: str, *, after: int | None = None) -> AsyncIterator[str]:
        """Lines as they are written, until the agent has exited and they are drained; from
        the log's start, or after a cursor read_from returned (none twice)."""
        ...
    async def list_active(self) -> list[ProcessState]: ...
    async def states(self) -> dict[str, ProcessState]:
        """Every fleet process this runtime knows (alive and exited), in one call."""
        ...
    async def send_input(self, task_id: str, text: str) -> None: ...
    async def last_output_at(self, task_id: str) -> float | None:
        """Epoch seconds of the agent's latest output (log file mtime), None if none yet."""
        ...


# --- forges (local git, github via gh) ---------------------------------------------------

@dataclass(frozen=True)
class ChangeRef:
    repo: Path
    branch: str
    base: str
    worktree: Path | None = None


@dataclass(frozen=True)
class Change:
    """A reviewable change: the branch has commits ahead of base (local) or a PR (github)."""

    head_sha: str
    commits_ahead: int
    pr_number: int | None = None
    pr_url: str | None = None


@dataclass(frozen=True)
class CIResult:
    status: CIStatus
    output: str = ""


@dataclass(frozen=True)
class MergeResult:
    merged: bool
    detail: str = ""
    conflict_files: list[str] = field(default_factory=list)


@runtime_checkable
class Forge(Protocol):
    name: str

    async def find_change(self, ref: ChangeRef) -> Change | None: ...
    async def ci_status(self, ref: ChangeRef) -> CIResult: ...
    async def diff(self, ref: ChangeRef) -> str: ...
    async def merge(self, ref: ChangeRef) -> MergeResult: ...


class CallBudget(Protocol):
    """A budget of calls per rolling window (e.g. GitHub's). take() counts one call when the
    budget allows it and returns 0.0; otherwise the seconds until one is free, or, while
    the calls are paused (pause(): the service said "rate limit"), minus the seconds left."""

    limit: int
    window_s: float

    async def take(self) -> float: ...

    async def pause(self, seconds: float) -> None: ...
