"""Disk hygiene: worktrees of finished tasks past the retention period are removed (their
unmerged commits and uncommitted changes bundled first); live tasks are never touched."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from fleet_tui.domain.models import TaskPatch
from fleet_tui.engine.ports import TaskPatcher, Workplace
from fleet_tui.infra.worktree import WorktreeManager
from fleet_tui.store import sweep as sweep_store
from fleet_tui.store.db import Database

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    removed: list[str] = field(default_factory=list)
    bundles: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    disk_bytes: int = 0


async def sweep_worktrees(*, db: Database, place: Workplace, worktrees: WorktreeManager, patch: TaskPatcher,
                          retention_hours: float) -> SweepReport:
    report = SweepReport()
    retention_s = retention_hours * 3600
    for task in await sweep_store.expired_worktrees(db, retention_s):
        try:
            await place.runtime_for(task.runtime).kill(task.id)  # an exited container: its branch link settled
            result = await worktrees.cleanup(
                Path(task.repo), path=Path(task.worktree_path or ""), branch=task.branch or f"fleet/{task.id}",
                base=task.base_branch)
            metadata = {"swept": True, "bundle": str(result.bundle) if result.bundle else None}
            await patch(task, TaskPatch(worktree_path=None, metadata=metadata))
            report.removed.append(task.id)
            if result.bundle:
                report.bundles.append(str(result.bundle))
        except Exception as exc:  # one bad worktree must not stop the sweep
            log.warning("sweep of task %s failed: %s", task.id, exc)
            report.errors.append(f"{task.id}: {exc}")
    report.disk_bytes = await worktrees.disk_usage()
    return report
