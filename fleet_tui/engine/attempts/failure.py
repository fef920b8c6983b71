"""Capture what a failed attempt left behind, sanitized, for the next attempt's prompt."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fleet_tui.domain.models import TaskRecord
from fleet_tui.engine.ports import Workplace
from fleet_tui.infra.protocols import Forge
from fleet_tui.infra.worktree import WorktreeManager

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 80


async def capture_task_failure(task: TaskRecord, *, place: Workplace, forge: Forge, worktrees: WorktreeManager,
                               exit_code: int | None, oom: bool = False, ci_output: str = "",
                               note: str = "") -> dict[str, Any]:
    from fleet_tui.engine.kit.sanitize import failure_context, is_oom

    worktree = Path(task.worktree_path) if task.worktree_path else None
    error_output = ""
    try:
        error_output = "\n".join(await place.runtime_for(task.runtime).tail(task.id, LOG_TAIL_LINES))
    except Exception as exc:  # the log may be gone with the process
        log.debug("no log tail for %s: %s", task.id, exc)
    diff, modified = "", []
    if worktree is not None and worktree.is_dir():
        try:
            diff = await forge.diff(place.change_ref(task))
        except Exception as exc:
            log.debug("no diff for %s: %s", task.id, exc)
        try:
            modified = await worktrees.changed_files(place.checkout(task))
        except Exception as exc:  # a broken worktree costs the list, not the capture
            log.debug("no changed files for %s: %s", task.id, exc)
    if note:
        error_output = f"{note}\n{error_output}".strip()
    context = failure_context(
        diff=diff, modified_files=modified, error_output=error_output, exit_code=exit_code,
        ci_output=ci_output, review_comments=(), worktree=worktree,
    )
    context["oom"] = oom or is_oom(exit_code, error_output)
    return context
