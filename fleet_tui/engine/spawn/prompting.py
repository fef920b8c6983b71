"""Turn a task into what its agent is given: argv (from the profile), the prompt (from the
enrichment tiers) and the scoped secrets. The prompt never reaches argv.

The prompt: CRITICAL the task, repo facts and rules; RELEVANT the repo's guidance files,
the previous attempt's failure and review comments, the pairing's track record;
BACKGROUND similar past tasks of this operator on this repo (quoted, as data) and recent commits on the base branch. Its
budget shrinks by a quarter per earlier out-of-memory attempt of the task."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet_tui.domain.models import RuntimeKind, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.spawn.enrichment import EnrichedPrompt, build_task_prompt
from fleet_tui.engine.spawn.spawner import SpawnPlan

if TYPE_CHECKING:
    from fleet_tui.config import Settings
    from fleet_tui.engine.ports import ProfileOf, PromptInputs
    from fleet_tui.infra.secrets import SecretsProvider
    from fleet_tui.infra.worktree import WorktreeManager
    from fleet_tui.store.db import Database

log = logging.getLogger(__name__)
FILES_SAMPLE = 40
SIMILAR_SHOWN = 8
_WORD = re.compile(r"[a-z0-9]{3,}")
GRANTED_KEY = "granted"  # task.metadata: permission rules granted by the operator


@dataclass(frozen=True)
class PromptSources:
    """What building a launch plan reads (satisfies ports.PromptInputs): the settings (the
    prompt's budget, the CI command), the fleet's history (similar tasks, the track
    record), the repository's git, the agent's profile and its scoped secrets. The
    composition root (engine/parts.py build_parts) makes it."""

    settings: Settings
    db: Database
    worktrees: WorktreeManager
    secrets: SecretsProvider
    profile: ProfileOf


def clean_description(text: str) -> str:
    """Environment values and secret-looking strings out; paths stay (they are the task's)."""
    from fleet_tui.engine.kit.sanitize import redact_env, redact_secrets

    return redact_secrets(redact_env(text, os.environ))


def rank_similar(description: str, tasks: list[dict[str, Any]], limit: int = SIMILAR_SHOWN) -> list[dict[str, Any]]:
    """Most shared words first; tasks sharing none are left out."""
    words = set(_WORD.findall(description.lower()))
    scored = [(len(words & set(_WORD.findall(str(t.get("description", "")).lower()))), i, t)
              for i, t in enumerate(tasks)]
    return [t for score, _, t in sorted(scored, key=lambda x: (-x[0], x[1])) if score > 0][:limit]


_BY_COMMIT: OrderedDict[tuple[str, str, tuple[str, ...]], list[str]] = OrderedDict()
BY_COMMIT_KEPT = 256  # answers kept, latest used first out


async def _git_lines(sources: PromptInputs, task: TaskRecord, args: list[str], branch: str,
                     limit: int) -> list[str]:
    """Lines of a git command on a branch of the task's repository (named explicitly, never
    discovered from the worktree, whose `.git` a previous attempt's agent may have rewritten).
    What git says of a commit never changes, so answers are kept by commit: spawns on the
    same base start no git process for them."""
    try:
        dirs = sources.worktrees.repository(task.repo)
        commit = dirs.branch_commit(branch)
        key = (str(dirs.common), commit or "", tuple(args))
        if commit is not None and key in _BY_COMMIT:
            _BY_COMMIT.move_to_end(key)
            return _BY_COMMIT[key][:limit]
        result = await dirs.run([*args, commit or f"refs/heads/{branch}"], check=False, timeout_s=15)
    except Exception as exc:  # a missing repo costs a BACKGROUND section, not the spawn
        log.debug("git %s failed: %s", args[0], exc)
        return []
    if not result.ok:
        return []
    lines = result.stdout.splitlines()[:limit]
    if commit is not None:
        _BY_COMMIT[key] = list(lines)
        while len(_BY_COMMIT) > BY_COMMIT_KEPT:
            _BY_COMMIT.popitem(last=False)
    return lines


@dataclass(frozen=True)
class PromptLookups:
    """What a prompt needs from the registry and the repository: nothing in the worktree,
    so a spawn starts them with its saga and they run while the worktree is made."""

    counts: Any
    similar: list[dict[str, Any]]
    files: list[str]
    recent: list[str]
    ooms: int


async def prompt_lookups(sources: PromptInputs, task: TaskRecord) -> PromptLookups:
    from fleet_tui.store import reputation as history

    # A just-admitted task's branch is made from its base with the worktree: list the base.
    # (spawning here: admitted straight into it; a launch is otherwise of a proposed or retrying task)
    fresh = task.status in (TaskStatus.PROPOSED, TaskStatus.SPAWNING)
    tree = task.base_branch if fresh else task.branch or task.base_branch

    async def from_the_registry() -> tuple[Any, list[dict[str, Any]], int]:  # one scope: one acquire, one transaction
        async with sources.db.system(kind="read") as conn:
            counts = await history.one_route_counts(conn, agent=task.agent or "unknown", model=task.model,
                                                    task_type=str(task.task_type))
            similar = await history.similar_tasks(conn, operator_id=task.operator_id, repo=task.repo,
                                                  task_type=str(task.task_type), exclude_id=task.id)
            ooms = 0 if fresh else await history.oom_attempts(conn, task_id=task.id)  # no attempt ran yet
        return counts, similar, ooms

    (counts, similar, ooms), files, recent = await asyncio.gather(
        from_the_registry(),
        _git_lines(sources, task, ["ls-tree", "-r", "--name-only", "--full-tree"], tree, FILES_SAMPLE),
        _git_lines(sources, task, ["log", "--first-parent", "--format=%s", "-n", "15"], task.base_branch, 15),
    )
    return PromptLookups(counts, similar, files, recent, ooms)


async def build_prompt_for(sources: PromptInputs, task: TaskRecord, worktree: Path,
                           lookups: PromptLookups | None = None) -> EnrichedPrompt:
    from fleet_tui.engine.choice.reputation import CandidateStats, reputation_note

    failure = dict(task.failure_context or {}) if task.retry_count else {}
    remarks: list[dict[str, Any]] = []
    if failure and task.failure_reason == "review_rejected":
        # blocking comments are in the failure context; the non-blocking ones come here
        remarks = [v for v in task.review_verdicts if v.get("verdict") == "comment" and v.get("comments")]
    found = lookups or await prompt_lookups(sources, task)
    counts = found.counts
    return build_task_prompt(
        description=clean_description(task.description),
        task_type=str(task.task_type),
        base=task.base_branch,
        repo_name=Path(task.repo).name,
        branch=task.branch,
        worktree=worktree,
        files_sample=found.files,
        failure_context=failure or None,
        verdicts=remarks,
        reputation_text=reputation_note(CandidateStats(counts.agent, counts.model, counts.successes,
                                                       counts.failures), str(task.task_type)),
        similar=rank_similar(task.description, found.similar),
        recent_changes=found.recent,
        budget_tokens=sources.settings.agents.prompt_budget_tokens,
        oom_count=found.ooms,
        agent_commits=sources.profile(task.agent).auto_commits,
    )


async def plan_for_task(sources: PromptInputs, task: TaskRecord, worktree: Path,
                        lookups: PromptLookups | None = None) -> SpawnPlan:
    from fleet_tui.infra.agents import build_argv, grants_env, task_env

    profile = sources.profile(task.agent)
    enriched = await build_prompt_for(sources, task, worktree, lookups)
    prompt = enriched.prompt
    # the prompt file's place is the runtime's: the token stays for it to bind (a host path
    # under tmux, /fleet/prompt.txt in a container, where a host path does not exist)
    argv = build_argv(profile, model=task.model, prompt_file=None, workdir=worktree,
                      test_command=repo_test_command(sources), granted=granted_rules(task),
                      in_container=task.runtime == RuntimeKind.DOCKER)
    env = sources.secrets.issue(profile, task.id)
    notes: list[tuple[str, dict[str, Any]]] = []
    if env:  # names only: values never reach the database
        notes.append(("secrets_issued", {"names": sorted(env)}))
    notes.append(("prompt_built", {"attempt": task.retry_count + 1, **enriched.to_dict()}))
    return SpawnPlan(argv=argv, prompt=prompt, prompt_via=profile.prompt_via,
                     env={**task_env(profile, task.id), **grants_env(profile, granted_rules(task)), **env},
                     context_hash=enriched.context_hash,
                     stream=profile.stream, egress=tuple(profile.egress), notes=notes)


async def resume_plan(sources: PromptInputs, task: TaskRecord, worktree: Path, *, prompt: str) -> SpawnPlan:
    """The profile's resume command (the agent continues its last session in this worktree)
    told `prompt`: after an interruption, or with a person's answer. Same policy, same grants."""
    from fleet_tui.infra.agents import build_argv, grants_env, task_env

    profile = sources.profile(task.agent)
    argv = build_argv(profile, model=task.model, prompt_file=None, workdir=worktree, resume=True,
                      test_command=repo_test_command(sources), granted=granted_rules(task),
                      in_container=task.runtime == RuntimeKind.DOCKER)
    return SpawnPlan(argv=argv, prompt=prompt, prompt_via=profile.prompt_via,
                     env={**task_env(profile, task.id), **grants_env(profile, granted_rules(task)),
                          **sources.secrets.issue(profile, task.id)},
                     stream=profile.stream,
                     egress=tuple(profile.egress))


def granted_rules(task: TaskRecord) -> list[str]:
    """The permissions an operator granted this task (retry --allow), in the order given."""
    return [str(rule) for rule in task.metadata.get(GRANTED_KEY) or []]


def repo_test_command(sources: PromptInputs) -> str:
    """The repository's CI command as one line, for a profile's permission rule."""
    import shlex

    command = sources.settings.forge.ci_command
    return shlex.join(command) if command else ""
