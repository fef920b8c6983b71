"""The conductor with the hardened Docker runtime: the demo agent runs in a container
(busybox image, the host's python and git bound read-only, as the repository's owner),
its change is found and CI passes; a container killed from outside is resumed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from fleet_tui.domain.models import RuntimeKind, SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from tests.e2e.test_conductor_flow import reviewable, wait_for
from tests.fixtures.engine import operator

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
AGENT_UID = 1000
MOUNTS = ["/usr:/usr:ro", f"{sys.base_prefix}:{sys.base_prefix}:ro", f"{ROOT}:{ROOT}:ro"]


@pytest.fixture(autouse=True)
def remove_new_containers(tmp_path: Path) -> Any:
    """Containers this test made go, pass or fail: those that bind something of its own
    tmp_path (its worktrees, its task dirs). The engine is shared by every test and by other
    test runs on the machine: removing every container new since the test began removed
    theirs too, mid-run (their agents' logs came back empty)."""
    client = docker.from_env()
    yield
    mine = (str(tmp_path), str(tmp_path.resolve()))
    for container in client.containers.list(all=True, filters={"label": "fleet=true"}):
        if any(str(m.get("Source", "")).startswith(mine) for m in container.attrs.get("Mounts") or []):
            container.remove(force=True)


async def docker_conductor(make_conductor: Any, repo: Path, image: str = "fleet-agent-test:latest") -> Any:
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(repo)], check=True)  # a user's repo
    return await make_conductor(runtime__default=RuntimeKind.DOCKER, runtime__docker_image=image,
                                runtime__docker_user="auto", runtime__docker_mounts=MOUNTS,
                                runtime__docker_memory="512m", runtime__stop_grace_s=2)


def container_of(task_id: str) -> Any:
    client = docker.from_env()
    [container] = client.containers.list(all=True, filters={"label": f"fleet-task-id={task_id}"})
    return container


async def test_a_demo_agent_in_a_container_reaches_a_reviewable_change(make_conductor: Any, git_repo: Path) -> None:
    conductor = await docker_conductor(make_conductor, git_repo)
    await conductor.start()
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="containerised change\nFLEET-DEMO: write hello.txt hi from a container", repo=str(git_repo)))
    assert spawned.task is not None and spawned.task.status == TaskStatus.RUNNING, spawned.task
    assert spawned.task.container_id
    attrs = container_of(spawned.task.id).attrs
    assert attrs["Config"]["User"] == f"{AGENT_UID}:{AGENT_UID}"
    assert attrs["HostConfig"]["ReadonlyRootfs"] is True and attrs["HostConfig"]["NetworkMode"] == "none"
    task = await wait_for(conductor, spawned.task.id, reviewable, timeout_s=60)
    assert "hello.txt" in await conductor.diff(SYSTEM, task.id)
    await conductor.stop(SYSTEM, task.id)
    assert docker.from_env().containers.list(all=True, filters={"label": f"fleet-task-id={task.id}"}) == []


async def test_a_container_killed_from_outside_is_resumed(make_conductor: Any, git_repo: Path) -> None:
    conductor = await docker_conductor(make_conductor, git_repo)
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="long job\nFLEET-DEMO: stall 60", repo=str(git_repo)))
    assert spawned.task is not None and spawned.task.status == TaskStatus.RUNNING
    await conductor.start()
    container_of(spawned.task.id).kill()  # SIGKILL from outside: exit 137, not OOM
    task = await wait_for(conductor, spawned.task.id,
                          lambda t: t.status in (TaskStatus.PR_CREATED, TaskStatus.REVIEWING, TaskStatus.READY,
                                                 TaskStatus.FAILED), timeout_s=60)
    assert task.status != TaskStatus.FAILED, task.failure_context
    assert task.metadata["resumes"] == 1 and task.retry_count == 0
    await conductor.runtime_for(RuntimeKind.DOCKER).kill(task.id)


async def test_a_restarted_conductor_re_adopts_a_live_container(make_conductor: Any, git_repo: Path) -> None:
    first = await docker_conductor(make_conductor, git_repo)
    spawned = await first.spawn(operator(), SpawnRequest(description="long job\nFLEET-DEMO: stall 60",
                                                         repo=str(git_repo)))
    assert spawned.task is not None
    restarted = await make_conductor(same_db=first, runtime__default=RuntimeKind.DOCKER,
                                     runtime__docker_image="fleet-agent-test:latest", runtime__docker_user="auto",
                                     runtime__docker_mounts=MOUNTS)
    await restarted.start(monitor=False)
    for _ in range(5):
        await restarted.monitor.run_cycle()
    task = await restarted.registry.get(spawned.task.id, operator=SYSTEM)
    assert task.status == TaskStatus.RUNNING, task.failure_context
    assert container_of(task.id).status == "running"
    await restarted.stop(SYSTEM, task.id)
