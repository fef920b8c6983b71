"""What an agent left uncommitted in its worktree, committed by the conductor.

An agent that exits 0 having edited files but not committed them (claude denied `git
commit`, codex's sandbox keeps .git read-only, a CLI that simply does not commit) has still
done the work: the conductor records it on the task's branch under its own identity, so
"exited 0 with edits" is never `no_change`. Untracked files are included; .gitignore is
respected (`git add -A`). Only on the task's own branch: a worktree whose HEAD moved
elsewhere is left as it is. Nothing the agent wrote is followed (infra/git.py)."""

from __future__ import annotations

from dataclasses import dataclass
from fleet_tui.infra.git import TaskCheckout, snapshot_tree

CONDUCTOR_IDENTITY = ["-c", "user.name=fleet-tui conductor", "-c", "user.email=conductor@fleet-tui.invalid"]
SUBJECT_MAX = 72
# What agent CLIs keep for themselves in the worktree: never part of the change (aider's
# repo-map cache, .aider.tags.cache.v4/, made even when its model call fails).
AGENT_STATE = (".aider*", ".aider*/**")


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


async def commit_leftovers(checkout: TaskCheckout, *, message: str,
                           timeout_s: float = 60.0) -> LeftoverCommit | None:
    """Commit everything left in the worktree on the task branch; None when nothing was
    left. The worktree is read as data (snapshot_files: the repository's git dir named from
    the task record, a private index), the branch moves only from the commit it had, and the
    worktree's index is then set to the new commit so that the agent's next run starts there."""
    try:
        head = (checkout.admin / "HEAD").read_text(errors="replace").strip()
    except OSError:
        return None
    if head != f"ref: {checkout.ref}" or (checkout.admin / "HEAD").is_symlink():
        return None
    old = (await checkout.run(["rev-parse", "--verify", f"{checkout.ref}^{{commit}}"], timeout_s=timeout_s)).stdout.strip()
    tree = await snapshot_tree(checkout, old, timeout_s=timeout_s, exclude=AGENT_STATE)
    changed = await checkout.run(["diff-tree", "-r", "-z", "--name-only", "--no-renames", old, tree],
                                 timeout_s=timeout_s)
    files = [f for f in changed.stdout.split("\0") if f]
    if not files:
        return None
    sha = (await checkout.run([*CONDUCTOR_IDENTITY, "commit-tree", tree, "-p", old, "-F", "-"],
                              stdin=message.encode("utf-8"), timeout_s=timeout_s)).stdout.strip()
    await checkout.run(["update-ref", "-m", "fleet: the agent's uncommitted work", checkout.ref, sha, old],
                       timeout_s=timeout_s)
    await checkout.run(["read-tree", sha], index_file=checkout.admin / "index", timeout_s=timeout_s)
    return LeftoverCommit(sha=sha, files=files)
