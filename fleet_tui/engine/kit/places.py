"""Where a task's agent runs and where its work lives, as its record says (never as its
files say): its runtime, its checkout, the change a forge knows it by. Satisfies
ports.Workplace; the composition root (engine/parts.py build_parts) makes it."""

from __future__ import annotations

from pathlib import Path

from fleet_tui.domain.models import RuntimeKind, TaskRecord
from fleet_tui.engine.kit.runtimes import Runtimes
from fleet_tui.infra.git import TaskCheckout
from fleet_tui.infra.protocols import ChangeRef, Runtime
from fleet_tui.infra.worktree import WorktreeManager


def change_ref(task: TaskRecord) -> ChangeRef:
    return ChangeRef(
        repo=Path(task.repo), branch=task.branch or f"fleet/{task.id}", base=task.base_branch,
        worktree=Path(task.worktree_path) if task.worktree_path else None,
    )


class TaskPlaces:
    def __init__(self, runtimes: Runtimes, worktrees: WorktreeManager) -> None:
        self._runtimes = runtimes
        self._worktrees = worktrees

    def runtime_for(self, kind: RuntimeKind | str) -> Runtime:
        return self._runtimes.get(kind)

    def checkout(self, task: TaskRecord) -> TaskCheckout:
        """What every host-side git call on the task runs against."""
        return self._worktrees.checkout(task.repo, task.worktree_path or self._worktrees.resolve_path(task.id),
                                        task.branch or f"fleet/{task.id}")

    def change_ref(self, task: TaskRecord) -> ChangeRef:
        return change_ref(task)
