"""A merge that conflicts with a base that moved on: aborted, the task stays ready, and the
operator is told the next step (in the error, in the task's record, in the audit trail, and
by `fleet-tui show`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.errors import TaskLiveError
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from tests.e2e.test_conductor_flow import wait_for
from tests.fixtures.engine import operator
from tests.fixtures.gitrepo import git

FLEET_TUI = str(Path(sys.executable).parent / "fleet-tui")


async def test_a_conflicting_merge_leaves_a_next_step(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(review__enabled=True)  # the default reviewers take it to ready
    await conductor.start()
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(
        description="change the greeting\nFLEET-DEMO: write app.py def greet():\\n    return 'hi from the task'\\n",
        repo=str(git_repo), agent="demo"))
    ready = await wait_for(conductor, spawned.task.id, lambda t: t.status == TaskStatus.READY, 90)
    (git_repo / "app.py").write_text("def greet():\n    return 'hi from main'\n")  # the base moves on
    git(git_repo, "commit", "-qam", "main changes the greeting too")

    with pytest.raises(TaskLiveError) as refused:
        await conductor.merge(op, ready.id)
    message = str(refused.value)
    assert "conflicts in app.py" in message and "stays ready" in message and "Next: rebase" in message
    after = await conductor.registry.get(ready.id, operator=SYSTEM)
    assert after.status == TaskStatus.READY
    assert after.metadata["merge_blocked"]["conflict_files"] == ["app.py"]
    audit = (await conductor.detail(op, ready.id)).audit
    assert any(row["action"] == "merge_failed" and "Next:" in row["detail"]["next"] for row in audit)

    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({"FLEET_DATABASE__URL": conductor.settings.database.url.get_secret_value(), "FLEET_DATA_DIR": str(conductor.settings.data_dir),
                "FLEET_OPERATOR__ID": op.id, "FLEET_OPERATOR__TIER": str(op.tier)})
    shown = subprocess.run([FLEET_TUI, "show", ready.id], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "merge: merge of task" in shown.stdout and "Next: rebase" in shown.stdout
    merged = subprocess.run([FLEET_TUI, "merge", ready.id], env=env, capture_output=True, text=True, timeout=120)
    assert merged.returncode == 5 and len(merged.stderr.splitlines()) == 1 and "Next: rebase" in merged.stderr
    assert json.loads(subprocess.run([FLEET_TUI, "show", ready.id, "--json"], env=env, capture_output=True,
                                     text=True, timeout=120).stdout)["task"]["status"] == "ready"
