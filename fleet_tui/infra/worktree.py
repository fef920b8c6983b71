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
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fleet_tui.domain.errors import SpawnError, SpawnErrorCode, ValidationFailed
from fleet_tui.infra.git import GitError, NotARepository, RepoDirs, TaskCheckout, repository_dirs, snapshot_tree
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
    tampered: list[str] = field(default_factory=list)


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

    def repository(self, repo: Path | str) -> RepoDirs:
        """The registered repository's dirs. A fleet worktree is never one: its `.git` is the
        agent's to write."""
        try:
            dirs = repository_dirs(repo)
        except (NotARepository, OSError):
            raise ValidationFailed("repo", f"not a git repository: {repo}") from None
        if dirs.top == self.base_dir or dirs.top.is_relative_to(self.base_dir):
            raise ValidationFailed("repo", "must not be a fleet worktree")
        return dirs

    def checkout(self, repo: Path | str, path: Path | str, branch: str) -> TaskCheckout:
        """A task's worktree pinned from its record: the repository registered for it, the
        worktree path under the base, the admin dir named after it, the task branch."""
        validate_branch(branch)
        path = self.confine(path)
        validate_task_id(path.name)
        return TaskCheckout(self.repository(repo), path, branch)

    # --- git helpers ---------------------------------------------------------------------

    async def _ok(self, checkout: TaskCheckout | RepoDirs, *args: str) -> bool:
        return (await checkout.run(list(args), timeout_s=self.git_timeout_s, check=False)).ok

    async def branch_exists(self, repo: Path | RepoDirs, branch: str) -> bool:
        validate_branch(branch)
        dirs = repo if isinstance(repo, RepoDirs) else self.repository(repo)
        known = dirs.has_branch(branch)  # the registered repository's ref files: no process
        if known is not None:
            return known
        return await self._ok(dirs, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")

    async def _commit(self, dirs: TaskCheckout | RepoDirs, rev: str) -> str | None:
        result = await dirs.run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
                                timeout_s=self.git_timeout_s, check=False)
        return result.stdout.strip() if result.ok else None

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
        verified that base exists (saves a git call)."""
        validate_branch(branch)
        validate_branch(base, field="base_branch")
        path = self.resolve_path(task_id)
        try:
            if not Path(repo).is_dir():
                raise ValidationFailed("repo", f"must be an existing directory: {repo}")
            dirs = self.repository(repo)
            existing = await self.branch_exists(dirs, branch)
            if existing and not allow_existing_branch:
                raise ValidationFailed("branch", f"must not be an existing branch ({branch} exists)")
            if not repo_checked and await self._commit(dirs, base) is None:
                raise ValidationFailed("base_branch", f"must name an existing branch or commit ({base})")
        except ProcTimeout as exc:
            raise SpawnError(SpawnErrorCode.TIMEOUT, f"git check timed out: {exc}") from None
        if path.exists():
            raise SpawnError(SpawnErrorCode.WORKTREE_FAILED, f"worktree path already exists: {path}")
        checkout = TaskCheckout(dirs, path, branch)

        self.base_dir.mkdir(parents=True, exist_ok=True)
        add = ["worktree", "add", str(path), branch] if existing else \
              ["worktree", "add", "-b", branch, str(path), base]
        try:
            await checkout.run(add, timeout_s=self.git_timeout_s)
            if checkout.tampering():  # e.g. a stale admin dir of that name: git chose another
                raise SpawnError(SpawnErrorCode.WORKTREE_FAILED,
                                 f"worktree admin dir {checkout.admin} is not the new worktree's")
        except (GitError, ProcTimeout, SpawnError) as exc:
            await self._undo(checkout, delete_branch=not existing)
            if isinstance(exc, SpawnError):
                raise
            code = SpawnErrorCode.TIMEOUT if isinstance(exc, ProcTimeout) else SpawnErrorCode.WORKTREE_FAILED
            raise SpawnError(code, f"git worktree add failed: {exc}") from None

        if self.setup_command:
            await self._setup(checkout, delete_branch=not existing)
        return path

    async def _setup(self, checkout: TaskCheckout, *, delete_branch: bool) -> None:
        try:
            result = await run(self.setup_command or [], cwd=checkout.worktree, timeout_s=self.setup_timeout_s)
        except ProcTimeout:
            await self._undo(checkout, delete_branch=delete_branch)
            raise SpawnError(SpawnErrorCode.TIMEOUT,
                             f"setup command timed out after {self.setup_timeout_s:g}s") from None
        except OSError as exc:
            await self._undo(checkout, delete_branch=delete_branch)
            raise SpawnError(SpawnErrorCode.INSTALL_FAILED, f"setup command: {exc.strerror}") from None
        if not result.ok:
            await self._undo(checkout, delete_branch=delete_branch)
            raise SpawnError(SpawnErrorCode.INSTALL_FAILED,
                             f"setup command exited {result.returncode}: {result.output[-500:]}")

    async def _undo(self, checkout: TaskCheckout, *, delete_branch: bool) -> None:
        """Best-effort removal of a worktree (and branch) this manager just made, before
        any agent could have committed to it: no snapshot needed."""
        await self._remove_worktree(checkout)
        if delete_branch:
            await self._ok(checkout, "branch", "-D", "--", checkout.branch)

    # --- repair ------------------------------------------------------------------------

    def repair(self, checkout: TaskCheckout) -> None:
        """Write the links between a reused worktree and its repository as git made them
        (a retry after an agent rewrote them): the next agent starts from the record."""
        dot_git = checkout.worktree / ".git"
        for path in (dot_git, checkout.admin / "gitdir", checkout.admin / "commondir"):
            if path.is_symlink():
                path.unlink()
            elif path.is_dir():  # e.g. a .git directory of the agent's own
                shutil.rmtree(path)
        dot_git.write_text(f"gitdir: {checkout.admin}\n")
        if checkout.admin.is_dir() and not checkout.admin.is_symlink():
            (checkout.admin / "gitdir").write_text(f"{dot_git}\n")
            (checkout.admin / "commondir").write_text("../..\n")
            (checkout.admin / "HEAD").write_text(f"ref: {checkout.ref}\n")

    # --- cleanup -----------------------------------------------------------------------

    async def unique_commits(self, repo: Path | RepoDirs, branch: str, base: str) -> int:
        """Commits on branch not reachable from base or any remote-tracking branch."""
        dirs = repo if isinstance(repo, RepoDirs) else self.repository(repo)
        exclude = [base] if await self._commit(dirs, base) else []
        result = await dirs.run(["rev-list", "--count", f"refs/heads/{branch}", "--not", *exclude, "--remotes"],
                                timeout_s=self.git_timeout_s, check=False)
        return int(result.stdout.strip() or 0) if result.ok else 0

    async def snapshot_uncommitted(self, checkout: TaskCheckout) -> str | None:
        """Record the worktree's files (untracked ones included, ignored ones not) as a commit
        on top of the task branch under refs/fleet-snapshots/, read as data: git runs on the
        repository's common dir with the worktree as GIT_WORK_TREE and a private index, so
        nothing the agent wrote (its `.git`, its admin dir) is followed, and the branch, the
        worktree and its index stay as they are. None when there is nothing new or no
        worktree."""
        if not checkout.worktree.is_dir():
            return None
        head = await self._commit(checkout, checkout.ref)
        tree = await snapshot_tree(checkout, head, timeout_s=self.git_timeout_s)
        if head and tree == await self._commit_tree(checkout, head):
            return None
        parent = ["-p", head] if head else []
        commit = (await checkout.run(["-c", "user.name=fleet-tui", "-c", "user.email=fleet-tui@localhost",
                                      "commit-tree", tree, *parent, "-m", "fleet: snapshot of uncommitted work"],
                                     timeout_s=self.git_timeout_s)).stdout.strip()
        ref = f"refs/fleet-snapshots/{checkout.branch}"
        await checkout.run(["update-ref", ref, commit], timeout_s=self.git_timeout_s)
        return ref

    async def changed_files(self, checkout: TaskCheckout, limit: int = 200) -> list[str]:
        """Files of the worktree that differ from the task branch (modified, deleted,
        untracked and not ignored), read as data like snapshot_uncommitted."""
        if not checkout.worktree.is_dir():
            return []
        head = await self._commit(checkout, checkout.ref)
        with tempfile.TemporaryDirectory() as tmp:
            index = Path(tmp) / "index"
            await checkout.run(["read-tree", head] if head else ["read-tree", "--empty"], index_file=index,
                               timeout_s=self.git_timeout_s)
            listed = await checkout.run(["ls-files", "-z", "--modified", "--deleted", "--others",
                                         "--exclude-standard", "--deduplicate"],
                                        work_tree=True, index_file=index, timeout_s=self.git_timeout_s)
        return [name for name in dict.fromkeys(listed.stdout.split("\0")) if name][:limit]

    async def _commit_tree(self, checkout: TaskCheckout, commit: str) -> str:
        return (await checkout.run(["rev-parse", f"{commit}^{{tree}}"], timeout_s=self.git_timeout_s)).stdout.strip()

    async def preserve(self, checkout: TaskCheckout, base: str) -> Path | None:
        """One bundle holding what would otherwise be lost: the branch's own commits and
        the worktree's uncommitted changes."""
        refs: list[str] = []
        if await self.branch_exists(checkout.repo, checkout.branch) and \
                await self.unique_commits(checkout.repo, checkout.branch, base) > 0:
            refs.append(checkout.ref)
        dirty = await self.snapshot_uncommitted(checkout)
        if dirty:
            refs.append(dirty)
        if not refs:
            return None
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        # unique: a quarantine and a delete may bundle the same task within one second
        target = self.snapshot_dir / f"{checkout.branch.replace('/', '__')}-{stamp}-{uuid.uuid4().hex[:8]}.bundle"
        exclude = [f"^{base}"] if await self._commit(checkout, base) else []
        await checkout.run(["bundle", "create", "-q", str(target), *refs, *exclude, "--not", "--remotes"],
                           timeout_s=self.git_timeout_s)
        if dirty:
            await checkout.run(["update-ref", "-d", dirty], timeout_s=self.git_timeout_s, check=False)
        return target

    async def cleanup(self, repo: Path, *, path: Path, branch: str, base: str) -> CleanupResult:
        """Snapshot unmerged commits and uncommitted changes, remove the worktree, delete the
        branch only if merged. A tampered worktree is cleaned the same way (nothing in it is
        followed); what was tampered is reported."""
        validate_branch(base, field="base_branch")
        checkout = self.checkout(repo, path, branch)
        tampered = checkout.tampering()
        has_branch = await self.branch_exists(checkout.repo, branch)
        bundle = await self.preserve(checkout, base)
        removed = await self._remove_worktree(checkout)
        deleted = False
        if has_branch and await self._commit(checkout, base) and await self._ok(
            checkout, "merge-base", "--is-ancestor", checkout.ref, base
        ):
            deleted = await self._ok(checkout, "branch", "-D", "--", branch)
        return CleanupResult(bundle=bundle, worktree_removed=removed, branch_deleted=deleted, tampered=tampered)

    async def remove_created(self, repo: Path, path: Path, branch: str, base: str) -> CleanupResult:
        """Saga compensation: remove the worktree and the branch this spawn created,
        snapshotting first if commits exist on it."""
        checkout = self.checkout(repo, path, branch)
        tampered = checkout.tampering()
        has_branch = await self.branch_exists(checkout.repo, branch)
        bundle = await self.preserve(checkout, base)
        removed = await self._remove_worktree(checkout)
        deleted = has_branch and await self._ok(checkout, "branch", "-D", "--", branch)
        return CleanupResult(bundle=bundle, worktree_removed=removed, branch_deleted=deleted, tampered=tampered)

    async def _remove_worktree(self, checkout: TaskCheckout) -> bool:
        """Remove the worktree and its admin dir by hand: `git worktree remove` would find
        them through the admin dir's `gitdir`, which the agent may have rewritten."""
        for path in (checkout.worktree, checkout.admin):
            if path.is_symlink():
                path.unlink()
            elif path.exists():
                await asyncio.to_thread(shutil.rmtree, path, True)
        return not checkout.worktree.exists()

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
