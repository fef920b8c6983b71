"""Only the task's own branch is writable from its container.

The repository's `refs/` and `logs/` are bound read-only into the container. The directory
holding the task branch's ref (`refs/heads/fleet/` for `fleet/<id>`) is overlaid, inside
the container only, by a spool directory of the conductor's (`<task dir>/git/refs`) that
holds that one ref; its reflog gets the same treatment (`<task dir>/git/logs`). The
agent's git commits as usual and moves the spool's ref; it sees no other ref of that
directory and can move none of the user's.

On the host the branch's loose ref is a symbolic link to the spool's ref, so the
conductor's git (diff, change detection, CI) sees each commit as it is made. When the
container goes (kill, a respawn, a failed spawn) the link is settled: a spool ref that is
a regular file holding one object id of an existing commit becomes the branch's ref
(written in place of the link), anything else (a symbolic ref, a link, garbage) leaves the
branch where it was before the run. `TaskCheckout.tampering` reports a spool ref that is
not a plain object id while the link stands."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from docker.types import Mount

from fleet_tui.infra.git import git, plain_ref_file

log = logging.getLogger(__name__)

SPOOL = "git"
LINK = "link.json"


def spool_dirs(task_dir: Path) -> tuple[Path, Path]:
    return task_dir / SPOOL / "refs", task_dir / SPOOL / "logs"


def plain_object_id(path: Path) -> str | None:
    """The object id a ref file holds, if it is a regular file holding only that."""
    return path.read_text().strip() if plain_ref_file(path) else None


async def commit_of(common: Path, ref: str) -> str | None:
    result = await git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=common, git_dir=common,
                       check=False, timeout_s=30)
    return result.stdout.strip() if result.ok else None


async def link_branch(task_dir: Path, common: Path, branch: str, *, owner: tuple[int, int] | None) -> list[Mount]:
    """Make the spool for this run and link the branch to it; the container's mounts."""
    await settle_branch(task_dir)  # a previous run's link, if one was left
    real = common / "refs" / "heads" / branch
    orig = await commit_of(common, f"refs/heads/{branch}")
    if orig is None:
        raise ValueError(f"task branch {branch} has no commit")
    refs_dir, logs_dir = spool_dirs(task_dir)
    shutil.rmtree(task_dir / SPOOL, ignore_errors=True)
    refs_dir.mkdir(parents=True)
    logs_dir.mkdir(parents=True)
    (refs_dir / real.name).write_text(f"{orig}\n")
    reflog = common / "logs" / "refs" / "heads" / branch
    if reflog.is_file() and not reflog.is_symlink():
        shutil.copyfile(reflog, logs_dir / real.name)
    (task_dir / SPOOL / LINK).write_text(json.dumps({"common": str(common), "branch": branch, "orig": orig}))
    if owner is not None:
        for path in (task_dir / SPOOL, refs_dir, logs_dir, *refs_dir.iterdir(), *logs_dir.iterdir()):
            os.lchown(path, *owner)
    # the mount points must exist in the read-only dirs the container sees
    real.parent.mkdir(parents=True, exist_ok=True)
    logs_target = common / "logs" / real.parent.relative_to(common)
    logs_target.mkdir(parents=True, exist_ok=True)
    _replace_with_link(real, refs_dir / real.name)
    return [Mount(str(real.parent), str(refs_dir), type="bind", read_only=False),
            Mount(str(logs_target), str(logs_dir), type="bind", read_only=False)]


def _replace_with_link(path: Path, target: Path) -> None:
    temporary = path.with_name(f".{path.name}.fleet-link")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, path)


async def settle_branch(task_dir: Path) -> str | None:
    """End a run's link: the branch's ref becomes the spool's commit when that is a plain
    object id of an existing commit, else stays where it was before the run. Returns the
    problem found, or None. Idempotent; nothing to do without a link."""
    link_file = task_dir / SPOOL / LINK
    try:
        link = json.loads(link_file.read_text())
        common, branch, orig = Path(link["common"]), str(link["branch"]), str(link["orig"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    real = common / "refs" / "heads" / branch
    refs_dir, _ = spool_dirs(task_dir)
    problem: str | None = None
    value = plain_object_id(refs_dir / real.name)
    if value is None:
        problem = "the task branch's ref was replaced by something other than a commit id"
    elif await commit_of(common, value) is None:
        problem = "the task branch's ref names no commit"
    target = orig if problem else value
    ref = f"refs/heads/{branch}"
    if real.is_symlink() and Path(os.readlink(real)) == refs_dir / real.name:
        # written by hand, atomically: `git update-ref` leaves a link in place when the
        # value does not change
        settled = real.with_name(f".{real.name}.fleet-settle")
        settled.write_text(f"{target}\n")
        os.replace(settled, real)
    elif value is not None and not problem:
        # the link went while the container ran (the user's `git gc` packed the ref and
        # pruned the loose one): the agent's later commits still reach the branch, if they
        # descend from where it is now
        current = await commit_of(common, ref)
        if current and current != value and (await git(
                ["merge-base", "--is-ancestor", current, value], cwd=common, git_dir=common,
                check=False, timeout_s=30)).ok:
            await git(["update-ref", "--no-deref", ref, value, current], cwd=common, git_dir=common,
                      check=False, timeout_s=30)
    link_file.unlink(missing_ok=True)
    if problem:
        log.warning("task branch %s: %s; left at %s", branch, problem, orig[:12])
    return problem
