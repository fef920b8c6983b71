"""Nothing the user made is deleted without a snapshot: uncommitted edits and untracked
files of a worktree survive its cleanup in the bundle, next to the branch's commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fleet_tui.infra.worktree import WorktreeManager
from tests.fixtures.gitrepo import git


async def test_uncommitted_work_is_bundled_before_the_worktree_goes(git_repo: Path, tmp_path: Path) -> None:
    manager = WorktreeManager(tmp_path / "worktrees", tmp_path / "snapshots")
    path = await manager.create(git_repo, task_id="snap00000001", branch="fleet/snap", base="main")
    (path / "app.py").write_text("def greet():\n    return 'edited, never committed'\n")
    (path / "notes.txt").write_text("untracked but precious\n")
    git(path, "add", "notes.txt")
    (path / "scratch.txt").write_text("not even added\n")

    result = await manager.cleanup(git_repo, path=path, branch="fleet/snap", base="main")

    assert result.worktree_removed and not path.exists()
    assert result.bundle is not None and result.bundle.exists()
    restored = tmp_path / "restored"
    subprocess.run(["git", "clone", "-q", str(git_repo), str(restored)], check=True)
    git(restored, "fetch", "-q", str(result.bundle), "refs/fleet-snapshots/fleet/snap:refs/heads/recovered")
    git(restored, "checkout", "-q", "recovered")
    assert "never committed" in (restored / "app.py").read_text()
    assert (restored / "notes.txt").read_text() == "untracked but precious\n"
    assert (restored / "scratch.txt").read_text() == "not even added\n"
    # the snapshot ref was only a vehicle for the bundle
    assert git(git_repo, "for-each-ref", "refs/fleet-snapshots") == ""


async def test_a_clean_merged_worktree_leaves_no_bundle(git_repo: Path, tmp_path: Path) -> None:
    manager = WorktreeManager(tmp_path / "worktrees", tmp_path / "snapshots")
    path = await manager.create(git_repo, task_id="snap00000002", branch="fleet/clean", base="main")
    result = await manager.cleanup(git_repo, path=path, branch="fleet/clean", base="main")
    assert result.bundle is None and result.branch_deleted
