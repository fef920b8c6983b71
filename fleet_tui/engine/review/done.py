"""Definition of done: the checks a task must pass before it may become ready.

Per task type, a list among: change_exists (the forge finds the change), synced_with_base
(the base branch is an ancestor of the task branch), ci_passing, approvals (at least N
approve verdicts; waived, and said so, when the review timed out). The state is stored in
task.metadata['done'] so that the detail view shows which check holds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping, Sequence

from fleet_tui.config import DONE_CHECKS
from fleet_tui.domain.models import CIStatus, TaskRecord, TaskType
from fleet_tui.infra.git import repository_dirs
from fleet_tui.infra.protocols import ChangeRef, Forge


@dataclass(frozen=True)
class DoneCheck:
    ok: bool
    detail: str


@dataclass
class DoneState:
    checks: dict[str, DoneCheck] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        return all(check.ok for check in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [f"{name}: {check.detail}" for name, check in self.checks.items() if not check.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "checked_at": time.time(),
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in self.checks.items()},
        }


def checks_for(task_type: TaskType | str, configured: Mapping[TaskType, Sequence[str]]) -> list[str]:
    return list(configured.get(TaskType(task_type), DONE_CHECKS))


async def evaluate_done(task: TaskRecord, *, forge: Forge, change: ChangeRef, checks: Sequence[str],
                        approvals: int, needed: int, approvals_waived: str | None = None) -> DoneState:
    """Run the task type's checks. A forge that cannot answer raises (FleetError): the
    caller tries again next cycle rather than judging the task on a missing answer."""
    state = DoneState()
    for name in checks:
        if name == "change_exists":
            found = await forge.find_change(change)
            state.checks[name] = (DoneCheck(True, f"{found.commits_ahead} commit(s) ahead of {task.base_branch}")
                                  if found else DoneCheck(False, "no change on the task branch"))
        elif name == "synced_with_base":
            state.checks[name] = await _synced(task)
        elif name == "ci_passing":
            state.checks[name] = DoneCheck(task.ci_status == CIStatus.PASSING, f"CI {task.ci_status or 'unknown'}")
        elif name == "approvals":
            if approvals >= needed:
                state.checks[name] = DoneCheck(True, f"{approvals} of {needed} approvals")
            elif approvals_waived:
                state.checks[name] = DoneCheck(True, f"waived ({approvals_waived}): {approvals} of {needed}")
            else:
                state.checks[name] = DoneCheck(False, f"{approvals} of {needed} approvals")
    return state


async def _synced(task: TaskRecord) -> DoneCheck:
    if not task.branch:
        return DoneCheck(False, "the task has no branch")
    result = await repository_dirs(task.repo).run(
        ["merge-base", "--is-ancestor", f"refs/heads/{task.base_branch}", f"refs/heads/{task.branch}"], check=False)
    if result.ok:
        return DoneCheck(True, f"contains the tip of {task.base_branch}")
    if result.returncode == 1:
        return DoneCheck(False, f"{task.base_branch} moved on: merge or rebase the branch onto it")
    return DoneCheck(False, f"could not compare with {task.base_branch}")
