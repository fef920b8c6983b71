"""The checks a spawn request meets before anything is made: the repository and its base
branch (resolved in as few git calls as possible: spawn latency counts), the branch name,
the agent and its model, the operator's tier, and the idempotency key of a request that
names none."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any
from collections.abc import Callable

from fleet_tui.domain.errors import PermissionDeniedError, ValidationFailed
from fleet_tui.domain.models import Operator, SpawnRequest, Tier
from fleet_tui.infra.git import GitError
from fleet_tui.infra.proc import ProcTimeout
from fleet_tui.infra.worktree import WorktreeManager

ChooseAgent = Callable[[SpawnRequest], tuple[str, str | None]]


async def spawn_field_errors(request: SpawnRequest, *, worktrees: WorktreeManager,
                             choose_agent: ChooseAgent) -> dict[str, str]:
    """Every rule of the fleet's that the request breaks, by field: the repository and
    its base branch, the branch, the agent and its model. A spawn checks the same and
    stops at the first; a form shows them all at once. Nothing is made."""
    errors: dict[str, str] = {}
    try:
        if request.repo:  # else the request's own rules refused it (a form's partial request)
            await resolve_repo_and_base(worktrees, request.repo, request.base_branch)
    except ValidationFailed as exc:
        errors[exc.field] = exc.rule
        if exc.field == "repo" and request.base_branch is not None:  # its spelling, at least
            errors.update(_broken(worktrees.validate_branch, request.base_branch, field="base_branch"))
    if request.branch:
        errors.update(_broken(worktrees.validate_branch, request.branch))
    errors.update(_broken(choose_agent, request))
    return errors


async def resolve_repo_and_base(worktrees: WorktreeManager, repo: str, base: str | None) -> tuple[Path, str]:
    """The repository's top level and the base branch (default: its current branch),
    in as few git calls as possible: spawn latency counts."""
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise ValidationFailed("repo", f"no such directory: {repo}")
    if base is not None:
        worktrees.validate_branch(base, field="base_branch")
    dirs = worktrees.repository(path)  # named explicitly: never discovered from cwd
    current = dirs.current_branch()  # the user's own checkout: its files answer without git
    born = True if current == "HEAD" else None if current is None else dirs.has_branch(current)
    if born is None:
        try:
            current = (await dirs.out(["rev-parse", "--abbrev-ref", "HEAD"], timeout_s=15))
        except (GitError, ProcTimeout):
            raise ValidationFailed("repo", f"not a git repository: {repo}") from None
    elif not born:  # as rev-parse answers on a branch without commits
        raise ValidationFailed("repo", f"not a git repository: {repo}")
    assert current is not None  # a born branch was named by the checkout, else by rev-parse
    if base is None:
        if current == "HEAD":
            raise ValidationFailed("base_branch", "repo has a detached HEAD; name the base branch")
        return dirs.top, current
    if base != current:
        exists = dirs.has_branch(base)
        if exists is None:
            try:
                await dirs.out(["rev-parse", "--verify", "--quiet", f"refs/heads/{base}"], timeout_s=15)
                exists = True
            except GitError:
                exists = False
        if not exists:
            raise ValidationFailed("base_branch", f"no branch {base} in {dirs.top}")
    return dirs.top, base


def _broken(check: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, str]:
    """{field: rule} of the ValidationFailed the check raises, {} when it passes."""
    try:
        check(*args, **kwargs)
    except ValidationFailed as exc:
        return {exc.field: exc.rule}
    return {}


def require_spawner(operator: Operator) -> None:
    if not operator.tier.at_least(Tier.BUILDER):
        raise PermissionDeniedError(f"spawn needs tier builder or above; operator {operator.id} is {operator.tier}")


_SPACE = re.compile(r"\s+")


def derive_idempotency_key(operator_id: str, repo: Path, description: str) -> str:
    """Same operator + repo + description (whitespace and case folded) = same task."""
    normalized = _SPACE.sub(" ", description.strip().lower())
    digest = hashlib.sha256(f"{operator_id}\n{repo}\n{normalized}".encode()).hexdigest()
    return f"auto:{digest[:40]}"
