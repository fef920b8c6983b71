"""Disk hygiene: worktrees of finished tasks past the retention period are removed (their
unmerged commits and uncommitted changes bundled first); live tasks are never touched."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fleet_tui.domain.models import TaskPatch
from fleet_tui.store import sweep as sweep_store

if TYPE_CHECKING:
    from fleet_tui.engine.conductor import Conductor

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    removed: list[str] = field(default_factory=list)
    bundles: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    disk_bytes: int = 0


async def sweep_worktrees(c: Conductor) -> SweepReport:
    report = SweepReport()
    retention_s = c.settings.worktree.retention_hours * 3600
    for task in await sweep_store.expired_worktrees(c.parts.db, retention_s):
        try:
            await c.runtime_for(task.runtime).kill(task.id)  # an exited container: its branch link settled
            result = await c.parts.worktrees.cleanup(
                Path(task.repo), path=Path(task.worktree_path or ""), branch=task.branch or f"fleet/{task.id}",
                base=task.base_branch)
            metadata = {"swept": True, "bundle": str(result.bundle) if result.bundle else None}
            await c.parts.patch(task, TaskPatch(worktree_path=None, metadata=metadata))
            report.removed.append(task.id)
            if result.bundle:
                report.bundles.append(str(result.bundle))
        except Exception as exc:  # one bad worktree must not stop the sweep
            log.warning("sweep of task %s failed: %s", task.id, exc)
            report.errors.append(f"{task.id}: {exc}")
    report.disk_bytes = await c.parts.worktrees.disk_usage()
    return report
