"""WorktreeManager against real git repositories."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fleet_tui.domain.errors import SpawnError, SpawnErrorCode, ValidationFailed
from fleet_tui.infra.worktree import WorktreeManager
from tests.fixtures.gitrepo import git


@pytest.fixture
def manager(tmp_path: Path) -> WorktreeManager:
    return WorktreeManager(tmp_path / "worktrees", tmp_path / "snapshots", git_timeout_s=30)


def branches(repo: Path) -> set[str]:
    return set(git(repo, "branch", "--format=%(refname:short)").split())


def commit_in(path: Path, name: str, text: str = "x\n") -> str:
    (path / name).write_text(text)
    git(path, "add", name)
    git(path, "commit", "-q", "-m", f"add {name}")
    return git(path, "rev-parse", "HEAD")


async def test_create_makes_a_worktree_on_a_new_branch(git_repo: Path, manager: WorktreeManager) -> None:
    path = await manager.create(git_repo, task_id="t1", branch="fleet/t1", base="main")
    assert path == manager.base_dir / "t1"
    assert (path / "app.py").is_file()
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "fleet/t1"
    assert await manager.branch_exists(git_repo, "fleet/t1")
    assert await manager.disk_usage() > 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"branch": "x;touch /tmp/pwned"}, "branch"),
        ({"branch": "has space"}, "branch"),
        ({"branch": "a\x00b"}, "branch"),
        ({"branch": "../../etc"}, "branch"),
        ({"branch": "-D"}, "branch"),
        ({"branch": "b" * 129}, "branch"),
        ({"base": "--upload-pack=evil"}, "base_branch"),
        ({"base": "no-such-base"}, "base_branch"),
        ({"task_id": "../../etc"}, "task_id"),
        ({"branch": "main"}, "branch"),  # existing branch without allow_existing_branch
    ],
)
async def test_bad_input_is_refused_and_creates_nothing(
    git_repo: Path, manager: WorktreeManager, kwargs: dict, field: str
) -> None:
    before = branches(git_repo)
    args = {"task_id": "t2", "branch": "fleet/t2", "base": "main", **kwargs}
    with pytest.raises(ValidationFailed) as info:
        await manager.create(git_repo, **args)
    assert info.value.field == field
    assert not manager.base_dir.exists()
    assert branches(git_repo) == before
    assert not Path("/tmp/pwned").exists()


async def test_existing_branch_allowed_when_asked(git_repo: Path, manager: WorktreeManager) -> None:
    git(git_repo, "branch", "fleet/again")
    path = await manager.create(git_repo, task_id="t3", branch="fleet/again", base="main",
                                allow_existing_branch=True)
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "fleet/again"


async def test_git_failure_leaves_nothing(git_repo: Path, manager: WorktreeManager) -> None:
    # the branch is checked out in another worktree, so `git worktree add` itself fails
    await manager.create(git_repo, task_id="t4", branch="fleet/t4", base="main")
    with pytest.raises(SpawnError) as info:
        await manager.create(git_repo, task_id="t5", branch="fleet/t4", base="main",
                             allow_existing_branch=True)
    assert info.value.code is SpawnErrorCode.WORKTREE_FAILED
    assert not (manager.base_dir / "t5").exists()
    assert "t5" not in git(git_repo, "worktree", "list")


async def test_setup_failure_removes_worktree_and_branch(git_repo: Path, tmp_path: Path) -> None:
    manager = WorktreeManager(tmp_path / "wt", tmp_path / "snap",
                              setup_command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(SpawnError) as info:
        await manager.create(git_repo, task_id="t6", branch="fleet/t6", base="main")
    assert info.value.code is SpawnErrorCode.INSTALL_FAILED
    assert "exited 3" in info.value.detail
    assert not (tmp_path / "wt" / "t6").exists()
    assert "fleet/t6" not in branches(git_repo)


async def test_setup_timeout_is_timeout_and_cleans_up(git_repo: Path, tmp_path: Path) -> None:
    manager = WorktreeManager(tmp_path / "wt", tmp_path / "snap", setup_timeout_s=0.5,
                              setup_command=[sys.executable, "-c", "import time; time.sleep(30)"])
    with pytest.raises(SpawnError) as info:
        await manager.create(git_repo, task_id="t7", branch="fleet/t7", base="main")
    assert info.value.code is SpawnErrorCode.TIMEOUT
    assert not (tmp_path / "wt" / "t7").exists()
    assert "fleet/t7" not in branches(git_repo)


async def test_setup_success_runs_in_the_worktree(git_repo: Path, tmp_path: Path) -> None:
    manager = WorktreeManager(tmp_path / "wt", tmp_path / "snap",
                              setup_command=[sys.executable, "-c", "open('.setup-ran','w').close()"])
    path = await manager.create(git_repo, task_id="t8", branch="fleet/t8", base="main")
    assert (path / ".setup-ran").exists()


async def test_cleanup_unmerged_branch_leaves_a_bundle_that_restores_it(
    git_repo: Path, manager: WorktreeManager, tmp_path: Path
) -> None:
    path = await manager.create(git_repo, task_id="t9", branch="fleet/t9", base="main")
    head = commit_in(path, "feature.txt", "precious work\n")
    result = await manager.cleanup(git_repo, path=path, branch="fleet/t9", base="main")
    assert result.worktree_removed and not path.exists()
    assert not result.branch_deleted and "fleet/t9" in branches(git_repo)
    assert result.bundle is not None and result.bundle.parent == manager.snapshot_dir
    # the bundle alone restores the commit, even after the branch is gone
    git(git_repo, "branch", "-D", "fleet/t9")
    git(git_repo, "bundle", "verify", str(result.bundle))
    git(git_repo, "fetch", "-q", str(result.bundle), "refs/heads/fleet/t9:refs/heads/restored")
    assert git(git_repo, "rev-parse", "restored") == head
    assert git(git_repo, "show", "restored:feature.txt") == "precious work"


async def test_cleanup_merged_branch_is_deleted_without_bundle(
    git_repo: Path, manager: WorktreeManager
) -> None:
    path = await manager.create(git_repo, task_id="ta", branch="fleet/ta", base="main")
    commit_in(path, "done.txt")
    git(git_repo, "merge", "-q", "--ff-only", "fleet/ta")
    result = await manager.cleanup(git_repo, path=path, branch="fleet/ta", base="main")
    assert result.bundle is None and result.worktree_removed and result.branch_deleted
    assert "fleet/ta" not in branches(git_repo)


async def test_commits_on_a_remote_need_no_bundle(git_repo: Path, manager: WorktreeManager,
                                                  tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(git_repo, "remote", "add", "origin", str(remote))
    path = await manager.create(git_repo, task_id="tb", branch="fleet/tb", base="main")
    commit_in(path, "pushed.txt")
    git(path, "push", "-q", "origin", "fleet/tb")
    result = await manager.cleanup(git_repo, path=path, branch="fleet/tb", base="main")
    assert result.bundle is None and not result.branch_deleted


async def test_cleanup_refuses_a_path_outside_the_base(git_repo: Path, manager: WorktreeManager) -> None:
    with pytest.raises(ValidationFailed) as info:
        await manager.cleanup(git_repo, path=git_repo, branch="main", base="main")
    assert info.value.field == "worktree_path"
    assert (git_repo / "app.py").exists()


async def test_remove_created_snapshots_then_deletes(git_repo: Path, manager: WorktreeManager) -> None:
    path = await manager.create(git_repo, task_id="tc", branch="fleet/tc", base="main")
    commit_in(path, "partial.txt")
    result = await manager.remove_created(git_repo, path, "fleet/tc", "main")
    assert result.bundle is not None and result.bundle.exists()
    assert result.worktree_removed and result.branch_deleted
    assert "fleet/tc" not in branches(git_repo)
    empty = await manager.create(git_repo, task_id="td", branch="fleet/td", base="main")
    result = await manager.remove_created(git_repo, empty, "fleet/td", "main")
    assert result.bundle is None and result.branch_deleted and not empty.exists()
