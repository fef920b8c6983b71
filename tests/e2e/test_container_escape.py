"""A hostile agent inside a container started by the product (tests/e2e/payloads/tamper.sh)
attacks the git the conductor runs afterwards: it builds its own git dir in the worktree
whose config defines filters, textconv, diff/merge drivers, pagers, editors, ssh/gpg
programs, credential helpers, hooks and an fsmonitor, selects them in .gitattributes and
points /workspace/.git (and its admin dir's commondir) at it; or points .git at another
repository of the user; or tries to move the user's branches. Then every host-side git path
runs on the task: change detection, failure capture, review diff, CI, merge, retry, saga
compensation, sweep and delete. No planted program ever runs on the host (a marker file
would appear), no other repository is mounted, no ref outside the task branch moves, and
the task fails `tampered` and can still be deleted."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.models import RuntimeKind, SpawnRequest, TaskRecord
from fleet_tui.domain.status import LIVE_STATUSES, TERMINAL_STATUSES, TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.attempts.failure import capture_task_failure
from tests.e2e.test_conductor_flow import wait_for
from tests.e2e.test_docker_conductor import AGENT_UID, MOUNTS, container_of, remove_new_containers  # noqa: F401
from tests.fixtures.engine import operator
from tests.fixtures.gitrepo import git, make_repo

PAYLOAD = Path(__file__).with_name("payloads") / "tamper.sh"
S = TaskStatus


def payload_profile(markers: Path, exit_code: int, mode: str) -> dict[str, Any]:
    return {"payload": {"command": ["/bin/sh", str(PAYLOAD), str(markers), str(exit_code), mode],
                        "prompt_via": "stdin"}}


def ugit(repo: Path, *args: str) -> str:
    """The test's own git on the user's repository (owned by another uid: named explicitly)."""
    return git(repo, f"--git-dir={repo / '.git'}", f"--work-tree={repo}", *args)


def fired(markers: Path) -> list[str]:
    return sorted(p.name for p in markers.iterdir())


def foreign_refs(repo: Path, branch: str) -> dict[str, str]:
    """Every ref of the user's repository but the task's branch and the conductor's own."""
    out = ugit(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    refs = dict(line.split(" ", 1) for line in out.splitlines())
    return {name: sha for name, sha in refs.items()
            if name != f"refs/heads/{branch}" and not name.startswith("refs/fleet-snapshots/")}


def users_repo(tmp_path: Path, name: str = "repo") -> Path:
    """The user's repository, owned by the user (uid 1000), checked out on a branch other
    than main: merging into main then happens outside any checkout of the user."""
    repo = make_repo(tmp_path / name)
    git(repo, "checkout", "-q", "-b", "dev")
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(repo)], check=True)
    return repo


async def hostile_conductor(make_conductor: Any, markers: Path, *, exit_code: int = 0, mode: str = "evil",
                            runtime: RuntimeKind = RuntimeKind.DOCKER, auto_retry: bool = False) -> Conductor:
    return await make_conductor(
        runtime__default=runtime, runtime__docker_image="fleet-agent-test:latest",
        runtime__docker_user="auto", runtime__docker_mounts=MOUNTS, runtime__docker_memory="512m",
        runtime__stop_grace_s=2, retry__auto=auto_retry, agents__profiles=payload_profile(markers, exit_code, mode))


async def spawn_hostile(conductor: Conductor, repo: Path) -> TaskRecord:
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="hostile agent", repo=str(repo), base_branch="main", agent="payload", max_retries=3))
    assert spawned.task is not None and spawned.task.status == S.RUNNING, spawned.task
    await conductor.start()
    return await wait_for(conductor, spawned.task.id, lambda t: t.status not in (S.SPAWNING, S.RUNNING),
                          timeout_s=60)


def agent_output(conductor: Conductor, task: TaskRecord) -> str:
    if task.runtime == RuntimeKind.DOCKER:
        return container_of(task.id).logs().decode(errors="replace")
    return ""


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


async def assert_tampered(conductor: Conductor, task: TaskRecord, markers: Path) -> None:
    assert task.status == S.FAILED and task.failure_reason == "tampered", (
        task.status, task.failure_reason, task.failure_context)
    assert fired(markers) == []


async def delete_after_abandoning(conductor: Conductor, task: TaskRecord) -> None:
    task = await conductor.registry.get(task.id, operator=SYSTEM)
    if task.status in LIVE_STATUSES:
        task = await conductor.stop(SYSTEM, task.id)
    elif task.status not in TERMINAL_STATUSES:
        task = await conductor.move(task, S.ABANDONED, actor="test", reason="test")
    await conductor.delete(SYSTEM, task.id)
    assert not Path(task.worktree_path or "/nonexistent").exists()
    if task.branch:  # no link into the conductor's data dir is left in the user's repository
        assert not (Path(task.repo) / ".git" / "refs" / "heads" / task.branch).is_symlink()


@pytest.mark.docker
async def test_no_host_side_git_path_runs_what_a_contained_agent_planted(
        make_conductor: Any, tmp_path: Path, markers: Path) -> None:
    repo = users_repo(tmp_path)
    before = foreign_refs(repo, "-")
    conductor = await hostile_conductor(make_conductor, markers)
    task = await spawn_hostile(conductor, repo)
    assert "tampered" in agent_output(conductor, task), agent_output(conductor, task)
    await assert_tampered(conductor, task, markers)  # change detection and failure capture ran
    assert task.branch and foreign_refs(repo, task.branch) == before

    ref = conductor.change_ref(task)
    steps: list[tuple[str, Any]] = [
        ("review diff", lambda: conductor.diff(SYSTEM, task.id)),
        ("change detection", lambda: conductor.parts.forge.find_change(ref)),
        ("CI status", lambda: conductor.parts.forge.ci_status(ref)),
        ("failure capture", lambda: capture_task_failure(
            task, place=conductor, forge=conductor.parts.forge, worktrees=conductor.parts.worktrees, exit_code=1)),
    ]
    for name, step in steps:
        await step()
        assert fired(markers) == [], f"{name} ran the agent's programs: {fired(markers)}"
    assert "agent.txt" in await conductor.diff(SYSTEM, task.id)
    assert foreign_refs(repo, task.branch) == before

    merged = await conductor.parts.forge.merge(ref)
    assert fired(markers) == [], f"merge ran the agent's programs: {fired(markers)}"
    assert merged.merged, merged.detail
    assert ugit(repo, "show", "main:agent.txt") == "agent change"
    assert ugit(repo, "rev-parse", "--abbrev-ref", "HEAD") == "dev"  # the user's checkout untouched

    await delete_after_abandoning(conductor, task)
    assert fired(markers) == [], f"delete ran the agent's programs: {fired(markers)}"
    assert not (repo / ".git" / "worktrees" / task.id).exists()


@pytest.mark.docker
@pytest.mark.parametrize("path", ["retry", "compensation", "sweep", "delete"])
async def test_cleaning_up_a_tampered_worktree_runs_nothing_and_keeps_the_work(
        make_conductor: Any, tmp_path: Path, markers: Path, path: str) -> None:
    repo = users_repo(tmp_path)
    before = foreign_refs(repo, "-")
    conductor = await hostile_conductor(make_conductor, markers, exit_code=3)
    task = await spawn_hostile(conductor, repo)
    await assert_tampered(conductor, task, markers)
    assert task.branch and task.worktree_path
    worktree = Path(task.worktree_path)
    if path == "retry":
        retried = await conductor.retry(SYSTEM, task.id)
        assert retried.status == S.RUNNING, retried.failure_context
        task = await wait_for(conductor, task.id, lambda t: t.status not in (S.SPAWNING, S.RUNNING), timeout_s=60)
        assert task.failure_reason == "tampered"
    elif path == "compensation":
        await conductor.parts.worktrees.remove_created(repo, worktree, task.branch, task.base_branch)
    elif path == "sweep":
        task = await conductor.move(task, S.ABANDONED, actor="test", reason="test")
        conductor.settings.worktree.retention_hours = 0
        report = await conductor.sweep()
        assert report.removed == [task.id], report.errors
    elif path == "delete":
        await delete_after_abandoning(conductor, task)
    assert fired(markers) == [], f"{path} ran the agent's programs: {fired(markers)}"
    assert foreign_refs(repo, task.branch) == before
    if path != "retry":
        assert not worktree.exists()
        bundles = list((conductor.settings.data_dir / "snapshots").glob("*.bundle"))
        assert bundles, "the agent's commits and uncommitted work were not kept"
        heads = "".join(subprocess.run(["git", "bundle", "list-heads", str(bundle)], capture_output=True,
                                       text=True, check=True).stdout for bundle in bundles)
        assert f"refs/heads/{task.branch}" in heads and f"refs/fleet-snapshots/{task.branch}" in heads, heads
    if path != "delete":
        await delete_after_abandoning(conductor, task)
    assert fired(markers) == []


@pytest.mark.docker
async def test_a_retried_container_never_mounts_another_repository(
        make_conductor: Any, tmp_path: Path, markers: Path) -> None:
    repo = users_repo(tmp_path)
    other = users_repo(tmp_path, "other")
    other_refs = foreign_refs(other, "-")
    conductor = await hostile_conductor(make_conductor, markers, exit_code=1,
                                        mode=f"elsewhere:{other / '.git'}")
    task = await spawn_hostile(conductor, repo)
    assert task.status == S.FAILED and task.failure_reason == "tampered", task.failure_reason
    retried = await conductor.retry(SYSTEM, task.id)
    assert retried.status == S.RUNNING, retried.failure_context
    mounts = [m["Source"] for m in container_of(task.id).attrs["Mounts"]]
    assert not any(str(other) in source for source in mounts), mounts
    task = await wait_for(conductor, task.id, lambda t: t.status not in (S.SPAWNING, S.RUNNING), timeout_s=60)
    output = agent_output(conductor, task)
    assert "other repository visible" not in output and "planted" not in output, output
    assert foreign_refs(other, "-") == other_refs
    await delete_after_abandoning(conductor, task)


@pytest.mark.docker
async def test_a_contained_agent_cannot_move_the_users_branches(
        make_conductor: Any, tmp_path: Path, markers: Path) -> None:
    repo = users_repo(tmp_path)
    ugit(repo, "checkout", "-q", "main")  # the user's checked-out main
    before = foreign_refs(repo, "-")
    conductor = await hostile_conductor(make_conductor, markers, mode="refs")
    task = await spawn_hostile(conductor, repo)
    output = agent_output(conductor, task)
    assert "committed" in output, output  # its own branch stays writable
    for attempt in ("moved main", "wrote main's ref file", "planted a branch", "planted a tag"):
        assert attempt not in output, output
    assert task.branch and foreign_refs(repo, task.branch) == before
    assert ugit(repo, "log", "-1", "--format=%s", f"refs/heads/{task.branch}") == "agent change"
    await delete_after_abandoning(conductor, task)


async def test_a_tampered_tmux_worktree_runs_nothing_on_the_host_and_is_never_retried_by_policy(
        make_conductor: Any, tmp_path: Path, markers: Path, git_repo: Path) -> None:
    before = foreign_refs(git_repo, "-")
    conductor = await hostile_conductor(make_conductor, markers, runtime=RuntimeKind.TMUX, auto_retry=True)
    task = await spawn_hostile(conductor, git_repo)
    task = await wait_for(conductor, task.id, lambda t: t.status == S.ABANDONED, timeout_s=30)
    assert task.failure_reason == "tampered" and task.retry_count == 0, (task.failure_reason, task.retry_count)
    assert fired(markers) == []
    assert task.branch and foreign_refs(git_repo, task.branch) == before
    await conductor.diff(SYSTEM, task.id)
    await capture_task_failure(task, place=conductor, forge=conductor.parts.forge,
                               worktrees=conductor.parts.worktrees, exit_code=1)
    await delete_after_abandoning(conductor, task)
    assert fired(markers) == [], fired(markers)


@pytest.mark.docker
async def test_a_branch_ref_turned_into_a_symbolic_ref_is_tampering_and_is_never_followed(
        make_conductor: Any, tmp_path: Path, markers: Path) -> None:
    repo = users_repo(tmp_path)
    before = foreign_refs(repo, "-")
    conductor = await hostile_conductor(make_conductor, markers, mode="symref")
    task = await spawn_hostile(conductor, repo)
    assert "made its branch a symbolic ref" in agent_output(conductor, task), agent_output(conductor, task)
    assert task.status == S.FAILED and task.failure_reason == "tampered", (task.status, task.failure_context)
    assert "the task branch's ref is no longer a plain commit id" in task.failure_context["tampered"]
    await conductor.runtime_for(RuntimeKind.DOCKER).kill(task.id)  # the container goes: the link is settled
    assert task.branch and foreign_refs(repo, task.branch) == before
    branch = Path(ugit(repo, "rev-parse", "--git-common-dir")) / "refs" / "heads" / task.branch
    assert not branch.is_symlink() and ugit(repo, "rev-parse", f"refs/heads/{task.branch}") == before["refs/heads/main"]
    await delete_after_abandoning(conductor, task)
