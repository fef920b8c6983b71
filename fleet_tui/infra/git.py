"""git through argument lists and asyncio subprocesses, with timeouts, never trusting a
worktree an agent has written.

An agent can write everything in its worktree (the `.git` file included) and, in a
container, its worktree's admin dir. So the conductor's git never discovers a repository
from a directory: every call names the git dir (and the work tree, when one is needed)
through GIT_DIR / GIT_WORK_TREE, computed from the registered repository
(`repository_dirs`), never read from files inside a worktree. An explicit GIT_DIR also
skips git's ownership check (safe.directory), so the conductor works in repositories
owned by another user without `safe.directory=*`.

Configuration comes only from the repository's own config (the user's; no container can
write it) and the command-line entries below: no system or global file (GIT_CONFIG_NOSYSTEM,
GIT_CONFIG_GLOBAL=/dev/null), no attributes file outside the repository, no hooks, no
fsmonitor, and no pager, editor, ssh, gpg, credential or alternate-refs program. The
inherited environment's GIT_* variables (a GIT_DIR, GIT_EXTERNAL_DIFF, GIT_SSH_COMMAND...)
are dropped. See git(1) ENVIRONMENT and git-config(1)."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping, Sequence

from fleet_tui.infra.proc import ProcResult, run

_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # an object id (SHA-1 or SHA-256)
# keys a program could hide in; values that make git run nothing (or fail)
SAFE_CONFIG: dict[str, str] = {
    "core.hooksPath": "/dev/null",
    "core.fsmonitor": "false",
    "core.pager": "cat",
    "core.editor": "false",
    "core.sshCommand": "false",
    "core.askPass": "false",
    "core.attributesFile": "/dev/null",
    "core.alternateRefsCommand": "false",
    "credential.helper": "",
    "gpg.program": "false",
    "gpg.ssh.program": "false",
    "gpg.x509.program": "false",
    "commit.gpgSign": "false",
    "tag.gpgSign": "false",
    "log.showSignature": "false",
    "merge.verifySignatures": "false",
    "protocol.allow": "never",
    "submodule.recurse": "false",
    "diff.ignoreSubmodules": "all",
    "status.submoduleSummary": "false",
}


def config_env(config: Mapping[str, str]) -> dict[str, str]:
    """git configuration given through the environment (GIT_CONFIG_COUNT, git >= 2.31)."""
    env = {"GIT_CONFIG_COUNT": str(len(config))}
    for i, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


GIT_ENV_DEFAULTS = {
    "GIT_TERMINAL_PROMPT": "0",  # never hang on a credential prompt
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_OPTIONAL_LOCKS": "0",
    **config_env(SAFE_CONFIG),
}


def git_env(*, git_dir: Path | None = None, work_tree: Path | None = None,
            index_file: Path | None = None) -> dict[str, str]:
    """The environment of the conductor's git: the inherited one without any GIT_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV_DEFAULTS)
    if git_dir is not None:
        env["GIT_DIR"] = str(git_dir)
    if work_tree is not None:
        env["GIT_WORK_TREE"] = str(work_tree)
    if index_file is not None:
        env["GIT_INDEX_FILE"] = str(index_file)
    return env


class GitError(Exception):
    def __init__(self, result: ProcResult) -> None:
        cmd = " ".join(result.argv[1:3])
        super().__init__(f"git {cmd} failed ({result.returncode}): {result.output[-500:]}")
        self.result = result


async def git(
    args: Sequence[str],
    *,
    cwd: Path | str,
    git_dir: Path,
    work_tree: Path | None = None,
    index_file: Path | None = None,
    timeout_s: float = 60.0,
    check: bool = True,
    stdin: bytes | None = None,
) -> ProcResult:
    """git with the safe environment on the repository named by git_dir (required: never
    one discovered from cwd, which an agent may have prepared)."""
    env = git_env(git_dir=git_dir, work_tree=work_tree, index_file=index_file)
    result = await run(["git", *args], cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin)
    if check and not result.ok:
        raise GitError(result)
    return result


# --- where a repository's git dirs are ------------------------------------------------------

@dataclass(frozen=True)
class RepoDirs:
    """A checkout of the user's: its top level, its own git dir (the common dir for a main
    checkout, an admin dir under it for a linked one) and the repository's common dir."""

    top: Path
    git_dir: Path
    common: Path

    async def run(self, args: Sequence[str], *, work_tree: bool = False, timeout_s: float = 60.0,
                  check: bool = True) -> ProcResult:
        return await git(args, cwd=self.top if work_tree else self.common, git_dir=self.git_dir,
                         work_tree=self.top if work_tree else None, timeout_s=timeout_s, check=check)

    async def out(self, args: Sequence[str], *, timeout_s: float = 60.0) -> str:
        return (await self.run(args, timeout_s=timeout_s)).stdout.strip()

    # Two answers read from the user's repository files instead of a git process (a spawn
    # asks both; a process costs milliseconds). None: not answerable from files (reftable
    # refs, an unusual HEAD): ask git. Never used on a task's worktree, which an agent writes.

    def current_branch(self) -> str | None:
        """The branch this checkout's HEAD names; "HEAD" when detached (as `git rev-parse
        --abbrev-ref HEAD` says)."""
        try:
            head = (self.git_dir / "HEAD").read_text(errors="replace").strip()
        except OSError:
            return None
        if head.startswith("ref: refs/heads/"):
            return head[len("ref: refs/heads/"):] or None
        return "HEAD" if _HEX.fullmatch(head) else None

    def branch_commit(self, branch: str) -> str | None:
        """The commit refs/heads/<branch> names (its loose ref file, else packed-refs); None
        when it does not exist or the files cannot tell (ask git then)."""
        if (self.common / "reftable").exists():
            return None
        ref = f"refs/heads/{branch}"
        try:
            loose = (self.common / ref).read_text(errors="replace").strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            loose = None
        except OSError:
            return None
        if loose is not None:
            return loose if _HEX.fullmatch(loose) else None  # e.g. a symbolic ref: git knows
        try:
            with open(self.common / "packed-refs", encoding="utf-8", errors="replace") as packed:
                for line in packed:
                    commit, _, name = line.rstrip("\n").partition(" ")
                    if name == ref:
                        return commit if _HEX.fullmatch(commit) else None
        except OSError:
            return None
        return None

    def has_branch(self, branch: str) -> bool | None:
        """Whether refs/heads/<branch> exists: its loose ref file, else a packed-refs line."""
        if (self.common / "reftable").exists():
            return None
        ref = f"refs/heads/{branch}"
        try:
            if (self.common / ref).is_file():
                return True
            with open(self.common / "packed-refs", encoding="utf-8", errors="replace") as packed:
                return any(line.rstrip("\n").partition(" ")[2] == ref for line in packed
                           if not line.startswith(("#", "^")))
        except FileNotFoundError:
            return False
        except OSError:
            return None


class NotARepository(Exception):
    pass


def read_gitfile(dot_git: Path) -> Path:
    """The git dir a `.git` file names (relative paths from its directory)."""
    text = dot_git.read_text(errors="replace").strip()
    if not text.startswith("gitdir:"):
        raise NotARepository(f"{dot_git} is not a gitfile")
    target = Path(text[len("gitdir:"):].strip())
    return (target if target.is_absolute() else dot_git.parent / target).resolve()


def common_dir_of(git_dir: Path) -> Path:
    commondir = git_dir / "commondir"
    if not commondir.is_file():
        return git_dir
    target = Path(commondir.read_text(errors="replace").strip())
    return (target if target.is_absolute() else git_dir / target).resolve()


def repository_dirs(path: Path | str) -> RepoDirs:
    """The checkout containing path (walking up to the first `.git`). Only for the user's
    own checkouts (a registered repository): never call it on a task's worktree, whose
    `.git` an agent may have rewritten."""
    start = Path(path).expanduser().resolve()
    for top in (start, *start.parents):
        dot_git = top / ".git"
        if dot_git.is_dir() and not dot_git.is_symlink():
            return RepoDirs(top, dot_git, common_dir_of(dot_git))
        if dot_git.is_file():
            git_dir = read_gitfile(dot_git)
            return RepoDirs(top, git_dir, common_dir_of(git_dir))
    raise NotARepository(f"not a git repository: {path}")


# --- a task's worktree, pinned from the task record -----------------------------------------

@dataclass(frozen=True)
class TaskCheckout:
    """Where a task's git state must be, computed by the conductor from the task record: the
    registered repository, its common dir, the worktree's admin dir `worktrees/<task id>`,
    the worktree path and the task branch. Nothing here is read from the worktree."""

    repo: RepoDirs
    worktree: Path
    branch: str

    @property
    def common(self) -> Path:
        return self.repo.common

    @property
    def admin(self) -> Path:
        return self.repo.common / "worktrees" / self.worktree.name

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    async def run(self, args: Sequence[str], *, work_tree: bool = False, index_file: Path | None = None,
                  timeout_s: float = 60.0, check: bool = True, stdin: bytes | None = None) -> ProcResult:
        """git on the repository's common dir (refs and objects, no worktree admin state);
        with work_tree the worktree's files are read as data through GIT_WORK_TREE."""
        return await git(args, cwd=self.common, git_dir=self.common,
                         work_tree=self.worktree if work_tree else None, index_file=index_file,
                         timeout_s=timeout_s, check=check, stdin=stdin)

    def tampering(self) -> list[str]:
        """What an agent changed in the links between the worktree and the repository:
        empty when `.git`, the admin dir's `gitdir` and `commondir` are as git made them."""
        if not self.worktree.exists():
            return []
        found: list[str] = []
        expected = {
            self.worktree / ".git": {f"gitdir: {self.admin}"},
            self.admin / "gitdir": {str(self.worktree / ".git")},
            self.admin / "commondir": {"../..", str(self.common)},
        }
        if self.admin.is_symlink() or not self.admin.is_dir():
            found.append(f"{self.admin} is not the worktree's admin dir")
        for path, allowed in expected.items():
            if path.is_symlink() or not path.is_file():
                found.append(f"{path.name} is not a regular file")
                continue
            try:
                content = path.read_text(errors="replace").strip()
            except OSError as exc:
                found.append(f"{path.name} unreadable: {exc.strerror}")
                continue
            if content not in allowed:
                found.append(f"{path.name} was rewritten")
        ref = self.common / "refs" / "heads" / self.branch
        if ref.is_symlink() and not plain_ref_file(Path(os.readlink(ref))):
            found.append("the task branch's ref is no longer a plain commit id")
        return found


async def snapshot_tree(checkout: TaskCheckout, head: str | None, *, timeout_s: float = 60.0,
                        exclude: Sequence[str] = ()) -> str:
    """The tree of the worktree's files (untracked included, ignored not) on top of head,
    read as data: git on the common dir, the worktree as GIT_WORK_TREE, a private index.
    The agent's index, HEAD and admin dir are never read. `exclude`: glob pathspecs of
    files left out (those not already in head)."""
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        add = ["add", "-A", "--", ".", *(f":(exclude,glob){pattern}" for pattern in exclude)]
        steps = [["read-tree", head] if head else ["read-tree", "--empty"], add, ["write-tree"]]
        for args in steps:
            result = await checkout.run(args, work_tree=True, index_file=index, timeout_s=timeout_s)
    return result.stdout.strip()


def plain_ref_file(path: Path) -> bool:
    """A ref file linked to a container's spool (infra/ref_spool.py): a regular file holding
    one object id."""
    try:
        if not path.is_absolute() or path.is_symlink() or not path.is_file() or path.stat().st_size > 100:
            return False
        value = path.read_text(errors="replace").strip()
    except OSError:
        return False
    return len(value) in (40, 64) and all(c in "0123456789abcdef" for c in value)
