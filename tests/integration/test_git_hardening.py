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
