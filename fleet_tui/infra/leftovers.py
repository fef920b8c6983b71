"""What an agent left uncommitted in its worktree, committed by the conductor.

An agent that exits 0 having edited files but not committed them (claude denied `git
commit`, codex's sandbox keeps .git read-only, a CLI that simply does not commit) has still
done the work: the conductor records it on the task's branch under its own identity, so
"exited 0 with edits" is never `no_change`. Untracked files are included; .gitignore is
respected (`git add -A`). Only on the task's own branch: a worktree whose HEAD moved
elsewhere is left as it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet_tui.infra.git import git

CONDUCTOR_IDENTITY = ["-c", "user.name=fleet-tui conductor", "-c", "user.email=conductor@fleet-tui.invalid"]
SUBJECT_MAX = 72


@dataclass(frozen=True)
class LeftoverCommit:
    sha: str
    files: list[str]


def commit_message(description: str, task_id: str) -> str:
    """First line of the task, shortened, then where it came from."""
    first = " ".join((description.strip().splitlines() or [""])[0].split()) or f"task {task_id}"
    if len(first) > SUBJECT_MAX:
        first = first[: SUBJECT_MAX - 1] + "…"
    return f"{first}\n\nCommitted by the fleet conductor: the agent of task {task_id} exited 0\n" \
           "leaving these changes uncommitted.\n"


async def commit_leftovers(worktree: Path, *, branch: str, message: str) -> LeftoverCommit | None:
    """Commit everything left in the worktree on `branch`; None when nothing was left."""
    head = await git(["symbolic-ref", "-q", "HEAD"], cwd=worktree, check=False)
    if head.stdout.strip() != f"refs/heads/{branch}":
        return None
    status = await git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd=worktree)
    if not status.stdout.strip("\0"):
        return None
    await git(["add", "-A", "--", "."], cwd=worktree)
    staged = await git(["diff", "--cached", "--name-only", "-z"], cwd=worktree)
    files = [f for f in staged.stdout.split("\0") if f]
    if not files:
        return None
    await git([*CONDUCTOR_IDENTITY, "commit", "-q", "--no-verify", "-F", "-"], cwd=worktree,
              stdin=message.encode("utf-8"))
    sha = (await git(["rev-parse", "HEAD"], cwd=worktree)).stdout.strip()
    return LeftoverCommit(sha=sha, files=files)
