"""The conductor's git never runs what an agent could plant in a repository's git dir."""

from __future__ import annotations

import stat
from pathlib import Path

from fleet_tui.infra.git import git
from tests.fixtures.gitrepo import git as plain_git


async def test_planted_hooks_and_fsmonitor_never_run(git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hook = git_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    plain_git(git_repo, "config", "core.fsmonitor", f"touch {marker}")
    dirs = {"cwd": git_repo, "git_dir": git_repo / ".git", "work_tree": git_repo}
    await git(["status", "--porcelain"], **dirs)
    await git(["checkout", "-q", "-b", "other"], **dirs)
    await git(["worktree", "add", "-q", str(tmp_path / "wt"), "main"], **dirs)
    assert not marker.exists()
    plain_git(git_repo, "config", "--unset", "core.fsmonitor")
    plain_git(git_repo, "checkout", "-q", "-b", "third")  # a plain git (the user's) still runs hooks
    assert marker.exists()


async def test_branch_head_and_commit_read_from_files_agree_with_git(git_repo: Path, tmp_path: Path) -> None:
    """The spawn path reads the registered repository's HEAD and refs from its files; each
    answer is git's (loose, packed, missing, detached, a linked checkout of the user's)."""
    from fleet_tui.infra.git import repository_dirs

    plain_git(git_repo, "branch", "loose")
    plain_git(git_repo, "branch", "feature/packed")
    plain_git(git_repo, "pack-refs", "--all")
    plain_git(git_repo, "branch", "after-pack")
    dirs = repository_dirs(git_repo)
    for branch in ("main", "loose", "feature/packed", "after-pack", "missing", "feature", "feature/pack"):
        shown = await git(["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"],
                          cwd=git_repo, git_dir=dirs.git_dir, check=False)
        assert dirs.has_branch(branch) is shown.ok, branch
        commit = await git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                           cwd=git_repo, git_dir=dirs.git_dir, check=False)
        assert dirs.branch_commit(branch) == (commit.stdout.strip() if commit.ok else None), branch
    assert dirs.current_branch() == "main"
    plain_git(git_repo, "worktree", "add", "-q", str(tmp_path / "linked"), "loose")
    assert repository_dirs(tmp_path / "linked").current_branch() == "loose"
    plain_git(git_repo, "checkout", "-q", "--detach")
    assert dirs.current_branch() == "HEAD"
    (dirs.common / "reftable").mkdir()  # refs not stored as files: git answers instead
    assert dirs.has_branch("main") is None and dirs.branch_commit("main") is None
