"""Disk sweep: finished tasks past retention lose their worktrees (bundles kept for
unmerged work); live ones are untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.models import SYSTEM
from tests.e2e.test_conductor_flow import reviewable, wait_for
from tests.fixtures.engine import operator


async def test_sweep_removes_old_finished_worktrees_and_keeps_live_ones(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(worktree__retention_hours=1)
    op = operator()
    done = await conductor.spawn(op, SpawnRequest(description="finished work", repo=str(git_repo)))
    live = await conductor.spawn(op, SpawnRequest(description="still going\nFLEET-DEMO: stall 60", repo=str(git_repo)))
    await conductor.start()
    await wait_for(conductor, done.task.id, reviewable, timeout_s=30)
    finished = await conductor.stop(op, done.task.id)
    done_path = Path(finished.worktree_path or "")
    assert done_path.is_dir()
    (done_path / "uncommitted.txt").write_text("left behind\n")
    conn = await asyncpg.connect(conductor.settings.database_url)  # age it past retention
    await conn.execute("UPDATE fleet_tasks SET completed_at = now() - interval '2 hours' WHERE id = $1", done.task.id)
    await conn.close()

    report = await conductor.sweep()

    assert report.removed == [done.task.id] and not report.errors
    assert not done_path.exists()
    assert len(report.bundles) == 1 and Path(report.bundles[0]).exists()  # its commit + the uncommitted file
    swept = await conductor.registry.get(done.task.id, operator=SYSTEM)
    assert swept.worktree_path is None and swept.metadata["swept"] is True
    still = await conductor.registry.get(live.task.id, operator=SYSTEM)
    assert still.worktree_path and Path(still.worktree_path).is_dir()
    assert report.disk_bytes > 0
    assert (await conductor.sweep()).removed == []  # idempotent
