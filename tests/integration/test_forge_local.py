"""LocalForge against real git repositories and real CI subprocesses."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from fleet_tui.domain.models import CIStatus
from fleet_tui.infra.forge_errors import ForgeError
from fleet_tui.infra.forge_local import NO_CI, LocalForge
from fleet_tui.infra.protocols import ChangeRef, CIResult, Forge
from tests.fixtures.gitrepo import git, make_repo


def task_worktree(repo: Path, branch: str = "task/1") -> ChangeRef:
    worktree = repo.parent / branch.replace("/", "-")
    git(repo, "worktree", "add", "-q", "-b", branch, str(worktree), "main")
    return ChangeRef(repo=repo, branch=branch, base="main", worktree=worktree)


def commit(cwd: Path, name: str, text: str, message: str = "change") -> str:
    (cwd / name).write_text(text)
    git(cwd, "add", name)
    git(cwd, "commit", "-q", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


async def settled(forge: LocalForge, ref: ChangeRef, timeout_s: float = 20.0) -> CIResult:
    async with asyncio.timeout(timeout_s):
        while True:
            result = await forge.ci_status(ref)
            if result.status != CIStatus.PENDING:
                return result
            await asyncio.sleep(0.05)


def counting_ci(counter: Path, *, exit_code: int = 0, sleep_s: float = 0.0) -> list[str]:
    script = (
        "import sys, time, pathlib\n"
        f"p = pathlib.Path({str(counter)!r}); p.write_text(p.read_text() + 'x' if p.exists() else 'x')\n"
        f"time.sleep({sleep_s})\n"
        "print('ran tests in', pathlib.Path.cwd().name)\n"
        f"print('boom' if {exit_code} else 'all good', file=sys.stderr)\n"
        f"sys.exit({exit_code})\n"
    )
    return [sys.executable, "-c", script]


def test_local_forge_satisfies_the_protocol() -> None:
    assert isinstance(LocalForge(), Forge)


async def test_find_change_counts_commits_ahead(git_repo: Path) -> None:
    forge = LocalForge()
    ref = task_worktree(git_repo)
    assert await forge.find_change(ref) is None  # branch exists but is not ahead
    missing = ChangeRef(repo=git_repo, branch="task/none", base="main")
    assert await forge.find_change(missing) is None

    commit(ref.worktree, "a.txt", "a\n")
    head = commit(ref.worktree, "b.txt", "b\n")
    change = await forge.find_change(ref)
    assert change is not None
    assert change.commits_ahead == 2
    assert change.head_sha == head
    assert change.pr_number is None


async def test_find_change_with_unknown_base_is_a_forge_error(git_repo: Path) -> None:
    ref = task_worktree(git_repo)
    commit(ref.worktree, "a.txt", "a\n")
    with pytest.raises(ForgeError):
        await LocalForge().find_change(ChangeRef(git_repo, ref.branch, "no-such-base"))


async def test_diff_shows_the_branch_against_base(git_repo: Path) -> None:
    ref = task_worktree(git_repo)
    commit(ref.worktree, "app.py", "def greet():\n    return 'hi'\n")
    commit(git_repo, "other.txt", "base moved on\n")  # three-dot diff ignores base's own work
    diff = await LocalForge().diff(ref)
    assert "-    return 'hello'" in diff
    assert "+    return 'hi'" in diff
    assert "other.txt" not in diff


async def test_ci_without_command_passes(git_repo: Path) -> None:
    ref = task_worktree(git_repo)
    result = await LocalForge().ci_status(ref)
    assert result == CIResult(CIStatus.PASSING, NO_CI)


async def test_ci_runs_once_per_head_sha_in_the_worktree(git_repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "ci-runs"
    forge = LocalForge(ci_command=counting_ci(counter, sleep_s=0.3), ci_timeout_s=30)
    ref = task_worktree(git_repo)
    commit(ref.worktree, "a.txt", "a\n")

    first = await forge.ci_status(ref)
    assert first.status == CIStatus.PENDING
    assert (await forge.ci_status(ref)).status == CIStatus.PENDING  # still running, not rerun
    result = await settled(forge, ref)
    assert result.status == CIStatus.PASSING
    assert f"ran tests in {ref.worktree.name}" in result.output  # ran in the worktree
    assert "all good" in result.output
    for _ in range(3):  # the monitor keeps asking: the cached result answers
        assert await forge.ci_status(ref) == result
    assert counter.read_text() == "x"

    commit(ref.worktree, "b.txt", "b\n")  # a new head sha gets a new run
    assert (await forge.ci_status(ref)).status == CIStatus.PENDING
    assert (await settled(forge, ref)).status == CIStatus.PASSING
    assert counter.read_text() == "xx"
    await forge.aclose()


async def test_ci_failure_keeps_output_and_exit_code(git_repo: Path, tmp_path: Path) -> None:
    forge = LocalForge(ci_command=counting_ci(tmp_path / "n", exit_code=3))
    ref = task_worktree(git_repo)
    commit(ref.worktree, "a.txt", "a\n")
    await forge.ci_status(ref)
    result = await settled(forge, ref)
    assert result.status == CIStatus.FAILING
    assert "exit code 3" in result.output
    assert "boom" in result.output


async def test_ci_output_keeps_the_tail(git_repo: Path) -> None:
    script = "print('HEAD-LINE'); print('y' * 50000); print('LAST-LINE')"
    forge = LocalForge(ci_command=[sys.executable, "-c", script], output_limit=1000)
    ref = task_worktree(git_repo)
    await forge.ci_status(ref)
    result = await settled(forge, ref)
    assert result.status == CIStatus.PASSING
    assert "LAST-LINE" in result.output and "HEAD-LINE" not in result.output
    assert len(result.output) <= 1001


async def test_ci_timeout_fails_with_a_message(git_repo: Path) -> None:
    forge = LocalForge(ci_command=[sys.executable, "-c", "import time; time.sleep(30)"],
                       ci_timeout_s=0.3)
    ref = task_worktree(git_repo)
    await forge.ci_status(ref)
    result = await settled(forge, ref)
    assert result.status == CIStatus.FAILING
    assert "timed out after 0.3s" in result.output


async def test_ci_missing_command_fails(git_repo: Path) -> None:
    forge = LocalForge(ci_command=["/nonexistent/ci-runner"])
    ref = task_worktree(git_repo)
    await forge.ci_status(ref)
    result = await settled(forge, ref)
    assert result.status == CIStatus.FAILING
    assert "could not start" in result.output


def test_ci_command_must_be_a_list() -> None:
    with pytest.raises(TypeError):
        LocalForge(ci_command="make test")  # type: ignore[arg-type]


async def test_merge_into_checked_out_base_makes_a_merge_commit(git_repo: Path) -> None:
    ref = task_worktree(git_repo)
    task_head = commit(ref.worktree, "feature.txt", "feature\n")
    result = await LocalForge().merge(ref)
    assert result.merged, result.detail
    parents = git(git_repo, "rev-list", "--parents", "-n", "1", "main").split()
    assert len(parents) == 3 and parents[2] == task_head  # --no-ff: a true merge commit
    assert (git_repo / "feature.txt").read_text() == "feature\n"  # the checkout moved too
    again = await LocalForge().merge(ref)
    assert again.merged and "already" in again.detail


async def test_merge_refuses_a_dirty_base_checkout(git_repo: Path) -> None:
    ref = task_worktree(git_repo)
    commit(ref.worktree, "feature.txt", "feature\n")
    before = git(git_repo, "rev-parse", "main")
    (git_repo / "app.py").write_text("operator's work in progress\n")
    result = await LocalForge().merge(ref)
    assert not result.merged
    assert "uncommitted changes" in result.detail
    assert git(git_repo, "rev-parse", "main") == before
    assert (git_repo / "app.py").read_text() == "operator's work in progress\n"


async def test_merge_conflict_is_reported_and_aborted(git_repo: Path) -> None:
    ref = task_worktree(git_repo)
    commit(ref.worktree, "app.py", "def greet():\n    return 'from task'\n")
    commit(git_repo, "app.py", "def greet():\n    return 'from base'\n")
    before = git(git_repo, "rev-parse", "main")
    result = await LocalForge().merge(ref)
    assert not result.merged
    assert result.conflict_files == ["app.py"]
    assert git(git_repo, "rev-parse", "main") == before
    assert git(git_repo, "status", "--porcelain") == ""  # aborted, nothing left half-merged
    assert not (git_repo / ".git" / "MERGE_HEAD").exists()


async def test_merge_uses_a_temporary_worktree_when_base_is_not_checked_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "elsewhere")
    ref = task_worktree(repo)
    task_head = commit(ref.worktree, "feature.txt", "feature\n")
    result = await LocalForge().merge(ref)
    assert result.merged, result.detail
    assert git(repo, "rev-parse", "main^2") == task_head
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "elsewhere"
    worktrees = [line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
                 if line.startswith("worktree ")]
    assert len(worktrees) == 2  # the main checkout and the task's; the temporary one is gone


async def test_merge_conflict_in_temporary_worktree_leaves_base_alone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    commit(repo, "app.py", "def greet():\n    return 'base'\n")
    git(repo, "checkout", "-q", "-b", "elsewhere", "main~1")
    ref = task_worktree(repo)  # branches from main, which already changed app.py
    git(ref.worktree, "reset", "-q", "--hard", "main~1")
    commit(ref.worktree, "app.py", "def greet():\n    return 'task'\n")
    before = git(repo, "rev-parse", "main")
    result = await LocalForge().merge(ref)
    assert not result.merged and result.conflict_files == ["app.py"]
    assert git(repo, "rev-parse", "main") == before
    assert len(git(repo, "worktree", "list").splitlines()) == 2


async def test_ci_runs_are_limited_in_parallel(tmp_path: Path) -> None:
    # each CI run holds a marker file while it runs; with one slot they never overlap
    script = (
        "import os, pathlib, sys, time\n"
        f"d = pathlib.Path({str(tmp_path / 'running')!r}); d.mkdir(exist_ok=True)\n"
        "me = d / str(os.getpid()); me.touch()\n"
        "overlap = len(list(d.iterdir())) > 1\n"
        "time.sleep(0.2); me.unlink()\n"
        "sys.exit(1 if overlap else 0)\n"
    )
    forge = LocalForge(ci_command=[sys.executable, "-c", script], max_parallel_ci=1)
    refs = []
    for i in range(3):
        repo = make_repo(tmp_path / f"repo{i}")
        refs.append(task_worktree(repo, branch=f"task/{i}"))
    for ref in refs:
        await forge.ci_status(ref)
    results = [await settled(forge, ref) for ref in refs]
    assert [r.status for r in results] == [CIStatus.PASSING] * 3
