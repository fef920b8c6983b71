"""Git worktrees for tasks: validated branch names, paths confined to the worktree base,
creation that leaves nothing behind on failure, and cleanup that snapshots unmerged work
into a git bundle before anything is deleted. Every git call is an argument list run as an
asyncio subprocess with a timeout (fleet_tui.infra.git)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fleet_tui.domain.errors import SpawnError, SpawnErrorCode, ValidationFailed
from fleet_tui.infra.git import GIT_ENV_DEFAULTS, GitError, git
from fleet_tui.infra.proc import ProcTimeout, run

BRANCH_RE = re.compile(r"^[a-zA-Z0-9._/-]+\Z")
BRANCH_MAX = 128
TASK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")


def validate_branch(name: object, *, field: str = "branch") -> str:
    """Return name if it is a safe branch name, else raise ValidationFailed(field, rule).
    Checks run in a fixed order so that each input names the first rule it breaks."""
    if not isinstance(name, str) or not name:
        raise ValidationFailed(field, "must not be empty")
    if "\x00" in name:
        raise ValidationFailed(field, "must not contain NUL characters")
    if len(name) > BRANCH_MAX:
        raise ValidationFailed(field, f"must be at most {BRANCH_MAX} characters")
    if name.startswith("-"):
        raise ValidationFailed(field, "must not start with '-'")
    if ".." in name:
        raise ValidationFailed(field, "must not contain '..'")
    if not BRANCH_RE.match(name):
        raise ValidationFailed(field, "may contain only letters, digits and . _ / -")
    if name.endswith(".lock"):
        raise ValidationFailed(field, "must not end with '.lock'")
    # git check-ref-format's remaining rules, so git never refuses what we accepted
    parts = name.split("/")
    if any(not part for part in parts):
        raise ValidationFailed(field, "must not start or end with '/' or contain '//'")
    if any(part.startswith(".") or part.endswith(".lock") for part in parts) or name.endswith("."):
        raise ValidationFailed(field, "path components must not start with '.' or end with '.lock' or '.'")
    return name


def validate_task_id(task_id: object) -> str:
    if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id):
        raise ValidationFailed("task_id", "must be 1-64 characters of a-z, 0-9, _ and - not starting with _ or -")
    return task_id


@dataclass(frozen=True)
class CleanupResult:
    bundle: Path | None
    worktree_removed: bool
    branch_deleted: bool


class WorktreeManager:
    def __init__(
        self,
        base_dir: Path,
        snapshot_dir: Path,
        *,
        git_timeout_s: float = 60.0,
        setup_command: list[str] | None = None,
        setup_timeout_s: float = 300.0,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.snapshot_dir = Path(snapshot_dir).resolve()
        self.git_timeout_s = git_timeout_s
        self.setup_command = list(setup_command) if setup_command else None
        self.setup_timeout_s = setup_timeout_s

    # --- validation ---------------------------------------------------------------------

    validate_branch = staticmethod(validate_branch)

    def resolve_path(self, task_id: str) -> Path:
        """The worktree path of a task, refused unless it lies under the worktree base."""
        validate_task_id(task_id)
        return self.confine(self.base_dir / task_id)

    def confine(self, path: Path | str) -> Path:
        resolved = Path(path).resolve()
        if resolved == self.base_dir or not resolved.is_relative_to(self.base_dir):
            raise ValidationFailed("worktree_path", f"must lie under the worktree base {self.base_dir}")
        return resolved

    # --- git helpers ---------------------------------------------------------------------

    async def _git(self, repo: Path, *args: str, check: bool = True) -> str:
        result = await git(list(args), cwd=repo, timeout_s=self.git_timeout_s, check=check)
        return result.stdout.strip() if result.ok else ""

    async def _ok(self, repo: Path, *args: str) -> bool:
        return (await git(list(args), cwd=repo, timeout_s=self.git_timeout_s, check=False)).ok

    async def branch_exists(self, repo: Path, branch: str) -> bool:
        validate_branch(branch)
        return await self._ok(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")

    async def _commit_exists(self, repo: Path, rev: str) -> bool:
        return await self._ok(repo, "rev-parse", "--verify", "--quiet", "--end-of-options",
                              f"{rev}^{{commit}}")

    # --- create ------------------------------------------------------------------------

    async def create(
        self,
        repo: Path,
        *,
        task_id: str,
        branch: str,
        base: str,
        allow_existing_branch: bool = False,
        repo_checked: bool = False,
    ) -> Path:
        """Make the task's worktree on a new branch from base and run the setup command.
        Bad input raises ValidationFailed before anything is made; a failure afterwards
        removes what was made and raises SpawnError. repo_checked: the caller has already
        verified that repo is a git repository and base exists (saves two git calls)."""
        validate_branch(branch)
        validate_branch(base, field="base_branch")
        path = self.resolve_path(task_id)
        repo = Path(repo).resolve()
        try:
            if not repo_checked and not await self._ok(repo, "rev-parse", "--git-dir"):
                raise ValidationFailed("repo", f"must be a git repository: {repo}")
            existing = await self.branch_exists(repo, branch)
            if existing and not allow_existing_branch:
                raise ValidationFailed("branch", f"must not be an existing branch ({branch} exists)")
            if not repo_checked and not await self._commit_exists(repo, base):
                raise ValidationFailed("base_branch", f"must name an existing branch or commit ({base})")
        except ProcTimeout as exc:
            raise SpawnError(SpawnErrorCode.TIMEOUT, f"git check timed out: {exc}") from None
        except (FileNotFoundError, NotADirectoryError):
            raise ValidationFailed("repo", f"must be an existing directory: {repo}") from None
        if path.exists():
            raise SpawnError(SpawnErrorCode.WORKTREE_FAILED, f"worktree path already exists: {path}")

        self.base_dir.mkdir(parents=True, exist_ok=True)
        add = ["worktree", "add", str(path), branch] if existing else \
              ["worktree", "add", "-b", branch, str(path), base]
        try:
            await git(add, cwd=repo, timeout_s=self.git_timeout_s)
        except (GitError, ProcTimeout) as exc:
            await self._undo(repo, path, branch, delete_branch=not existing)
            code = SpawnErrorCode.TIMEOUT if isinstance(exc, ProcTimeout) else SpawnErrorCode.WORKTREE_FAILED
            raise SpawnError(code, f"git worktree add failed: {exc}") from None

        if self.setup_command:
            await self._setup(repo, path, branch, delete_branch=not existing)
        return path

    async def _setup(self, repo: Path, path: Path, branch: str, *, delete_branch: bool) -> None:
        try:
            result = await run(self.setup_command or [], cwd=path, timeout_s=self.setup_timeout_s)
        except ProcTimeout:
            await self._undo(repo, path, branch, delete_branch=delete_branch)
            raise SpawnError(SpawnErrorCode.TIMEOUT,
                             f"setup command timed out after {self.setup_timeout_s:g}s") from None
        except OSError as exc:
            await self._undo(repo, path, branch, delete_branch=delete_branch)
            raise SpawnError(SpawnErrorCode.INSTALL_FAILED, f"setup command: {exc.strerror}") from None
        if not result.ok:
            await self._undo(repo, path, branch, delete_branch=delete_branch)
            raise SpawnError(SpawnErrorCode.INSTALL_FAILED,
                             f"setup command exited {result.returncode}: {result.output[-500:]}")

    async def _undo(self, repo: Path, path: Path, branch: str, *, delete_branch: bool) -> None:
        """Best-effort removal of a worktree (and branch) this manager just made, before
        any agent could have committed to it: no snapshot needed."""
        await self._remove_worktree(repo, path)
        if delete_branch:
            await git(["branch", "-D", "--", branch], cwd=repo, timeout_s=self.git_timeout_s, check=False)

    # --- cleanup -----------------------------------------------------------------------

    async def unique_commits(self, repo: Path, branch: str, base: str) -> int:
        """Commits on branch not reachable from base or any remote-tracking branch."""
        exclude = [base] if await self._commit_exists(repo, base) else []
        out = await self._git(repo, "rev-list", "--count", f"refs/heads/{branch}",
                              "--not", *exclude, "--remotes")
        return int(out or 0)

    async def snapshot_uncommitted(self, repo: Path, path: Path, branch: str) -> str | None:
        """Record the worktree's uncommitted changes (untracked files included) as a commit
        on top of its HEAD under refs/fleet-snapshots/, without touching the branch or the
        worktree's index. Returns the ref, or None when the worktree is clean or gone."""
        if not path.is_dir():
            return None
        status = await git(["status", "--porcelain"], cwd=path, timeout_s=self.git_timeout_s, check=False)
        if not status.ok or not status.stdout.strip():
            return None
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index"), **GIT_ENV_DEFAULTS}
            steps = [["git", "read-tree", "HEAD"], ["git", "add", "-A"], ["git", "write-tree"]]
            for argv in steps:
                result = await run(argv, cwd=path, timeout_s=self.git_timeout_s, env=env)
                if not result.ok:
                    raise GitError(result)
            tree = result.stdout.strip()
        commit = (await git(["-c", "user.name=fleet-tui", "-c", "user.email=fleet-tui@localhost",
                             "commit-tree", tree, "-p", "HEAD", "-m", "fleet: snapshot of uncommitted work"],
                            cwd=path, timeout_s=self.git_timeout_s)).stdout.strip()
        ref = f"refs/fleet-snapshots/{branch}"
        await git(["update-ref", ref, commit], cwd=repo, timeout_s=self.git_timeout_s)
        return ref

    async def _preserve(self, repo: Path, path: Path, branch: str, base: str) -> Path | None:
        """One bundle holding what would otherwise be lost: the branch's own commits and
        the worktree's uncommitted changes."""
        refs: list[str] = []
        if await self.branch_exists(repo, branch) and await self.unique_commits(repo, branch, base) > 0:
            refs.append(f"refs/heads/{branch}")
        dirty = await self.snapshot_uncommitted(repo, path, branch)
        if dirty:
            refs.append(dirty)
        if not refs:
            return None
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.snapshot_dir / f"{branch.replace('/', '__')}-{stamp}-{os.getpid()}.bundle"
        exclude = [f"^{base}"] if await self._commit_exists(repo, base) else []
        await git(["bundle", "create", "-q", str(target), *refs, *exclude, "--not", "--remotes"],
                  cwd=repo, timeout_s=self.git_timeout_s)
        if dirty:
            await git(["update-ref", "-d", dirty], cwd=repo, timeout_s=self.git_timeout_s, check=False)
        return target

    async def cleanup(self, repo: Path, *, path: Path, branch: str, base: str) -> CleanupResult:
        """Snapshot unmerged commits and uncommitted changes, remove the worktree, delete the
        branch only if merged."""
        validate_branch(branch)
        validate_branch(base, field="base_branch")
        path = self.confine(path)
        repo = Path(repo).resolve()
        has_branch = await self.branch_exists(repo, branch)
        bundle = await self._preserve(repo, path, branch, base)
        removed = await self._remove_worktree(repo, path)
        deleted = False
        if has_branch and await self._commit_exists(repo, base) and await self._ok(
            repo, "merge-base", "--is-ancestor", f"refs/heads/{branch}", base
        ):
            deleted = await self._ok(repo, "branch", "-D", "--", branch)
        return CleanupResult(bundle=bundle, worktree_removed=removed, branch_deleted=deleted)

    async def remove_created(self, repo: Path, path: Path, branch: str, base: str) -> CleanupResult:
        """Saga compensation: remove the worktree and the branch this spawn created,
        snapshotting first if commits exist on it."""
        validate_branch(branch)
        path = self.confine(path)
        repo = Path(repo).resolve()
        has_branch = await self.branch_exists(repo, branch)
        bundle = await self._preserve(repo, path, branch, base)
        removed = await self._remove_worktree(repo, path)
        deleted = has_branch and await self._ok(repo, "branch", "-D", "--", branch)
        return CleanupResult(bundle=bundle, worktree_removed=removed, branch_deleted=deleted)

    async def _remove_worktree(self, repo: Path, path: Path) -> bool:
        await git(["worktree", "remove", "--force", "--force", str(path)], cwd=repo,
                  timeout_s=self.git_timeout_s, check=False)
        if path.exists():  # not a registered worktree (or git refused): remove by hand
            await asyncio.to_thread(shutil.rmtree, path, True)
        await git(["worktree", "prune"], cwd=repo, timeout_s=self.git_timeout_s, check=False)
        return not path.exists()

    async def disk_usage(self) -> int:
        """Bytes used under the worktree base (files only, symlinks not followed)."""
        return await asyncio.to_thread(_tree_size, self.base_dir)


def _tree_size(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total
