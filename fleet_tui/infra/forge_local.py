"""The embedded forge: a change is the task branch ahead of base, CI is a local command,
merge is `git merge --no-ff` into base. Conflicts are reported, never forced."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator, Sequence

from fleet_tui.domain.models import CIStatus
from fleet_tui.infra.forge_errors import ForgeError
from fleet_tui.infra.git import GitError, NotARepository, RepoDirs, git, read_gitfile, repository_dirs
from fleet_tui.infra.proc import ProcTimeout, run
from fleet_tui.infra.protocols import Change, ChangeRef, CIResult, MergeResult


CI_OUTPUT_LIMIT = 20_000  # keep the tail: failures are printed last
NO_CI = "no CI configured"
# Used only when the repository has no identity of its own: the conductor makes the merge.
FLEET_IDENTITY = ["-c", "user.name=fleet-tui", "-c", "user.email=fleet-tui@localhost"]


@contextmanager
def forge_errors() -> Iterator[None]:
    """git failing or hanging is a forge error to the monitor, which degrades only its checks."""
    try:
        yield
    except GitError as exc:
        raise ForgeError(str(exc)) from exc
    except ProcTimeout as exc:
        raise ForgeError(str(exc)) from exc
    except (NotARepository, OSError) as exc:
        raise ForgeError(str(exc)) from exc


def tail(text: str, limit: int = CI_OUTPUT_LIMIT) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


async def commits_ahead(repo: Path | RepoDirs, base: str, branch: str, *, timeout_s: float = 60.0) -> int:
    """Commits on branch that base lacks; 0 when the branch does not exist."""
    dirs = repo if isinstance(repo, RepoDirs) else repository_dirs(repo)
    exists = await dirs.run(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                            timeout_s=timeout_s, check=False)
    if not exists.ok:
        return 0
    return int(await dirs.out(["rev-list", "--count", f"{base}..refs/heads/{branch}"], timeout_s=timeout_s))


class LocalForge:
    name = "local"

    def __init__(
        self,
        *,
        ci_command: Sequence[str] | None = None,
        ci_timeout_s: float = 600.0,
        git_timeout_s: float = 60.0,
        output_limit: int = CI_OUTPUT_LIMIT,
        max_parallel_ci: int = 4,
        fleet_worktrees: Path | None = None,
    ) -> None:
        if isinstance(ci_command, str):
            raise TypeError("ci_command must be an argument list, not a shell string")
        self._ci_command = list(ci_command) if ci_command else None
        self._ci_timeout_s = ci_timeout_s
        self._git_timeout_s = git_timeout_s
        self._output_limit = output_limit
        self._max_parallel_ci = max_parallel_ci
        self._ci_slots: asyncio.Semaphore | None = None  # made on first use, in the engine's loop
        # worktree -> (head sha, the CI run for it). One run per head sha, never per cycle.
        self._ci_runs: dict[Path, tuple[str, asyncio.Task[CIResult]]] = {}
        self._merge_locks: dict[Path, asyncio.Lock] = {}
        self._fleet_worktrees = Path(fleet_worktrees).resolve() if fleet_worktrees else None

    # --- change ---------------------------------------------------------------------------

    async def find_change(self, ref: ChangeRef) -> Change | None:
        with forge_errors():
            dirs = repository_dirs(ref.repo)
            ahead = await commits_ahead(dirs, ref.base, ref.branch, timeout_s=self._git_timeout_s)
            if ahead == 0:
                return None
            head = await dirs.out(["rev-parse", f"refs/heads/{ref.branch}"], timeout_s=self._git_timeout_s)
        return Change(head_sha=head, commits_ahead=ahead)

    async def diff(self, ref: ChangeRef) -> str:
        """The change as text: tree to tree in the repository, no textconv, no external diff
        (the branch's .gitattributes is the agent's to write)."""
        with forge_errors():
            result = await repository_dirs(ref.repo).run(
                ["diff", "--no-textconv", "--no-ext-diff", "--ignore-submodules=all",
                 f"{ref.base}...refs/heads/{ref.branch}"], timeout_s=self._git_timeout_s)
        return result.stdout

    # --- CI -------------------------------------------------------------------------------

    async def ci_status(self, ref: ChangeRef) -> CIResult:
        """First call for a head sha starts CI in the background and answers pending; later
        calls answer pending until it finishes, then its (cached) result."""
        if self._ci_command is None:
            return CIResult(CIStatus.PASSING, NO_CI)
        if ref.worktree is None:
            raise ForgeError("local CI needs the task worktree")
        worktree = ref.worktree.resolve()
        with forge_errors():  # the branch in the repository, not the worktree's HEAD (the agent's)
            head = await repository_dirs(ref.repo).out(["rev-parse", f"refs/heads/{ref.branch}"],
                                                       timeout_s=self._git_timeout_s)
        current = self._ci_runs.get(worktree)
        if current is None or current[0] != head or current[1].cancelled():
            if current is not None and not current[1].done():
                current[1].cancel()  # a new commit makes the old run moot
            task = asyncio.create_task(self._run_ci(worktree), name=f"ci:{worktree.name}:{head[:8]}")
            self._ci_runs[worktree] = (head, task)
            return CIResult(CIStatus.PENDING, f"CI started for {head[:12]}")
        task = current[1]
        if not task.done():
            return CIResult(CIStatus.PENDING, f"CI running for {head[:12]}")
        error = task.exception()
        if error is not None:
            return CIResult(CIStatus.FAILING, f"CI crashed: {type(error).__name__}: {error}")
        return task.result()

    async def _run_ci(self, worktree: Path) -> CIResult:
        assert self._ci_command is not None
        if self._ci_slots is None:
            self._ci_slots = asyncio.Semaphore(self._max_parallel_ci)
        async with self._ci_slots:  # a fleet of worktrees must not run every CI at once
            return await self._run_ci_now(worktree)

    async def _run_ci_now(self, worktree: Path) -> CIResult:
        assert self._ci_command is not None
        try:
            result = await run(self._ci_command, cwd=worktree, timeout_s=self._ci_timeout_s)
        except ProcTimeout:
            return CIResult(CIStatus.FAILING, f"CI timed out after {self._ci_timeout_s:g}s")
        except OSError as exc:  # command missing or not executable
            return CIResult(CIStatus.FAILING, f"CI could not start: {exc.strerror or exc}")
        output = tail(result.stdout + result.stderr, self._output_limit)
        if result.ok:
            return CIResult(CIStatus.PASSING, output)
        return CIResult(CIStatus.FAILING, f"exit code {result.returncode}\n{output}")

    async def aclose(self) -> None:
        """Cancel CI runs still in flight (shutdown)."""
        tasks = [task for _, task in self._ci_runs.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ci_runs.clear()

    # --- merge ----------------------------------------------------------------------------

    async def merge(self, ref: ChangeRef) -> MergeResult:
        with forge_errors():
            dirs = repository_dirs(ref.repo)
        lock = self._merge_locks.setdefault(dirs.common, asyncio.Lock())
        async with lock:  # two merges into one repo never interleave
            with forge_errors():
                return await self._merge_locked(dirs, ref)

    async def _merge_locked(self, dirs: RepoDirs, ref: ChangeRef) -> MergeResult:
        already = await dirs.run(["merge-base", "--is-ancestor", f"refs/heads/{ref.branch}", ref.base],
                                 timeout_s=self._git_timeout_s, check=False)
        if already.ok:
            return MergeResult(True, f"{ref.branch} is already in {ref.base}")
        checkout = await self._checkout_of(dirs, ref.base)
        if checkout is not None:
            return await self._merge_in(checkout, ref)
        return await self._merge_in_temporary_worktree(dirs, ref)

    async def _checkout_of(self, dirs: RepoDirs, branch: str) -> RepoDirs | None:
        """The user's checkout (the main one or a linked one) that has branch checked out.
        Fleet worktrees are never asked: an agent writes what its admin dir claims."""
        listing = await dirs.out(["worktree", "list", "--porcelain"], timeout_s=self._git_timeout_s)
        path: Path | None = None
        for line in listing.splitlines():
            if line.startswith("worktree "):
                path = Path(line[len("worktree "):])
            elif line == f"branch refs/heads/{branch}" and path is not None and not self._is_fleet_worktree(path):
                if path.resolve() == dirs.common.parent.resolve():
                    return RepoDirs(path, dirs.common, dirs.common)
                admin = read_gitfile(path / ".git")  # the user's checkout names its admin dir
                if admin.parent == dirs.common / "worktrees":
                    return RepoDirs(path, admin, dirs.common)
        return None

    def _is_fleet_worktree(self, path: Path) -> bool:
        base = self._fleet_worktrees
        return base is not None and (path.resolve() == base or path.resolve().is_relative_to(base))

    async def _merge_in_temporary_worktree(self, dirs: RepoDirs, ref: ChangeRef) -> MergeResult:
        tmp = Path(tempfile.mkdtemp(prefix="fleet-merge-"))
        checkout = tmp / "base"
        try:
            # --force: only fleet worktrees (whose claims are the agents') may list base as theirs
            await git(["worktree", "add", "--quiet", "--force", str(checkout), ref.base], cwd=dirs.common,
                      git_dir=dirs.common, timeout_s=self._git_timeout_s)
            admin = read_gitfile(checkout / ".git")  # ours, in a private temp dir
            return await self._merge_in(RepoDirs(checkout, admin, dirs.common), ref)
        finally:
            await git(["worktree", "remove", "--force", str(checkout)], cwd=dirs.common, git_dir=dirs.common,
                      timeout_s=self._git_timeout_s, check=False)
            shutil.rmtree(tmp, ignore_errors=True)
            await git(["worktree", "prune"], cwd=dirs.common, git_dir=dirs.common,
                      timeout_s=self._git_timeout_s, check=False)

    async def _merge_in(self, checkout: RepoDirs, ref: ChangeRef) -> MergeResult:
        dirty = (await checkout.run(["status", "--porcelain", "--untracked-files=no"], work_tree=True,
                                    timeout_s=self._git_timeout_s)).stdout.strip()
        if dirty:
            return MergeResult(
                False, f"{ref.base} checkout at {checkout.top} has uncommitted changes; not merging"
            )
        identity = await self._identity_args(checkout)
        message = f"Merge branch '{ref.branch}' into {ref.base} (fleet-tui)"
        result = await checkout.run(
            [*identity, "merge", "--no-ff", "--no-edit", "-m", message, f"refs/heads/{ref.branch}"],
            work_tree=True, timeout_s=self._git_timeout_s, check=False,
        )
        if result.ok:
            head = await checkout.out(["rev-parse", "HEAD"], timeout_s=self._git_timeout_s)
            return MergeResult(True, f"merged {ref.branch} into {ref.base} at {head[:12]}")
        conflicts = (await checkout.run(["diff", "--name-only", "--diff-filter=U"], work_tree=True,
                                        timeout_s=self._git_timeout_s)).stdout.strip()
        in_progress = await checkout.run(["rev-parse", "--verify", "--quiet", "MERGE_HEAD"],
                                         timeout_s=self._git_timeout_s, check=False)
        if in_progress.ok:
            await checkout.run(["merge", "--abort"], work_tree=True, timeout_s=self._git_timeout_s)
        files = [line for line in conflicts.splitlines() if line]
        if files:
            return MergeResult(False, f"conflicts merging {ref.branch} into {ref.base}; aborted",
                               conflict_files=files)
        return MergeResult(False, f"git merge failed: {result.output[-500:]}")

    async def _identity_args(self, checkout: RepoDirs) -> list[str]:
        email = await checkout.run(["config", "--get", "user.email"], timeout_s=self._git_timeout_s, check=False)
        return [] if email.stdout.strip() else list(FLEET_IDENTITY)
