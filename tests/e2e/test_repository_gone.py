"""A task whose repository is removed while its agent runs: when the agent exits, the
monitor's tamper check finds no repository to compare against and leaves it to the usual
checks, which end the task (it once raised NameError there, every cycle, and the task
stayed running)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from tests.e2e.test_conductor_flow import wait_for
from tests.fixtures.engine import operator


async def test_an_agent_exiting_after_its_repository_was_removed_ends_its_task(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    spawned = await conductor.spawn(operator(), SpawnRequest(description="FLEET-DEMO: stall 1", repo=str(git_repo)))
    assert spawned.task.status == TaskStatus.RUNNING
    shutil.rmtree(git_repo)
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status != TaskStatus.RUNNING, 30)
    assert task.status == TaskStatus.FAILED, task
    assert conductor.monitor.errors == 0
