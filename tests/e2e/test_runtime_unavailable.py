"""A runtime that cannot be reached (a Docker endpoint that does not answer: DOCKER_HOST on a
dead unix socket; the real engine of this machine is left alone): a spawn is refused with one
line and makes nothing; a task already bound to it fails with a reason that says the engine
is unreachable and waits without spending its retry budget, then runs once the engine is back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from fleet_tui.domain.errors import RUNTIME_UNAVAILABLE, RuntimeUnavailableError
from fleet_tui.domain.models import SpawnRequest, TaskType
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.spawn import spawner
from fleet_tui.domain.models import SYSTEM
from tests.e2e.test_conductor_flow import wait_for
from tests.e2e.terminal import FLEET_TUI
from tests.e2e.test_docker_conductor import docker_conductor, remove_new_containers  # noqa: F401 (fixture)
from tests.fixtures.db import fetch
from tests.fixtures.engine import operator

pytestmark = pytest.mark.docker


async def test_a_dead_engine_refuses_spawns_and_parks_its_tasks_until_it_is_back(
        make_conductor: Any, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    monkeypatch.setattr(spawner, "RUNTIME_WAIT_S", 0.5)
    conductor = await docker_conductor(make_conductor, git_repo)
    op = operator()
    with pytest.raises(RuntimeUnavailableError) as refused:
        await conductor.spawn(op, SpawnRequest(description="refused", repo=str(git_repo)))
    assert "Docker engine" in str(refused.value) and "unreachable" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert (await conductor.status(op)).tasks == []  # nothing was made

    # a task admitted before the engine went away (queued, or retrying)
    task, _ = await conductor.governor.admit(
        op, description="bound to docker\nFLEET-DEMO: write hello.txt back", repo=str(git_repo),
        base_branch="main", task_type=TaskType.FEATURE, agent="demo", model="demo-small", runtime="docker",
        priority=50, max_retries=3, idempotency_key="parked", branch=None, trace_id=None)
    failed = await conductor.launch(task, actor="test")
    assert failed.status == TaskStatus.FAILED and failed.failure_reason == RUNTIME_UNAVAILABLE
    assert "unreachable" in failed.failure_context["message"] and failed.retry_count == 0
    assert not Path(failed.worktree_path).exists()  # nothing made

    await conductor.start()  # the monitor retries it: waiting, never counting
    await asyncio.sleep(4)
    waiting = await conductor.registry.get(task.id, operator=SYSTEM)
    assert waiting.retry_count == 0 and waiting.status in (TaskStatus.FAILED, TaskStatus.RETRYING,
                                                           TaskStatus.SPAWNING), waiting
    assert waiting.failure_reason == RUNTIME_UNAVAILABLE

    monkeypatch.delenv("DOCKER_HOST")  # the engine is back
    running = await wait_for(conductor, task.id, lambda t: t.status not in (
        TaskStatus.FAILED, TaskStatus.RETRYING, TaskStatus.SPAWNING), 90)
    assert running.status in (TaskStatus.RUNNING, TaskStatus.PR_CREATED, TaskStatus.REVIEWING,
                              TaskStatus.READY), running
    assert running.retry_count == 0


async def test_a_missing_image_refuses_the_spawn_and_parks_tasks_until_it_is_built(
        make_conductor: Any, fresh_database: Any, git_repo: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine without the agent's image: the spawn used to be admitted, fail in the
    saga with docker's '404 Client Error ... No such image' and burn its retries."""
    monkeypatch.setattr(spawner, "RUNTIME_WAIT_S", 0.5)
    missing = f"fleet-agent-missing:{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({"FLEET_DATABASE__URL": await fresh_database(), "FLEET_DATA_DIR": str(tmp_path / "cli"),
                "FLEET_RUNTIME__DOCKER_IMAGE": missing})
    done = await asyncio.to_thread(subprocess.run, [str(FLEET_TUI), "spawn", "refused", "--runtime", "docker",
                                                    "--agent", "demo", "--repo", str(git_repo)],
                                   env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr  # refused
    [line] = done.stderr.strip().splitlines()
    assert f"no image {missing} (agent demo)" in line and "runtime.docker_images" in line, line
    assert await fetch(env["FLEET_DATABASE__URL"], "SELECT id FROM fleet_tasks") == []  # nothing made

    conductor = await docker_conductor(make_conductor, git_repo, image=missing)
    op = operator()
    task, _ = await conductor.governor.admit(  # admitted while the image was there, say
        op, description="bound to a missing image\nFLEET-DEMO: write hello.txt back", repo=str(git_repo),
        base_branch="main", task_type=TaskType.FEATURE, agent="demo", model="demo-small", runtime="docker",
        priority=50, max_retries=3, idempotency_key="parked", branch=None, trace_id=None)
    failed = await conductor.launch(task, actor="test")
    assert failed.status == TaskStatus.FAILED and failed.failure_reason == RUNTIME_UNAVAILABLE
    assert missing in failed.failure_context["message"] and failed.retry_count == 0
    await conductor.start()
    await asyncio.sleep(3)  # waiting for the image, never counting
    waiting = await conductor.registry.get(task.id, operator=SYSTEM)
    assert waiting.retry_count == 0 and waiting.failure_reason == RUNTIME_UNAVAILABLE, waiting

    client = docker.from_env()
    client.images.get("fleet-agent-test:latest").tag(*missing.split(":"))  # the image is built
    try:
        running = await wait_for(conductor, task.id, lambda t: t.status not in (
            TaskStatus.FAILED, TaskStatus.RETRYING, TaskStatus.SPAWNING), 90)
        assert running.status in (TaskStatus.RUNNING, TaskStatus.PR_CREATED, TaskStatus.REVIEWING,
                                  TaskStatus.READY), running
        assert running.retry_count == 0
        await conductor.stop(SYSTEM, task.id)
    finally:
        client.images.remove(missing)
