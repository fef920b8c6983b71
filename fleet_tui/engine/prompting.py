"""Turn a task into what its agent is given: argv (from the profile), the prompt (from the
enrichment tiers) and the scoped secrets. The prompt never reaches argv."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fleet_tui.domain.models import TaskRecord
from fleet_tui.engine.spawner import SpawnPlan

if TYPE_CHECKING:
    from fleet_tui.engine.parts import EngineParts

SAFETY_RULES = """Rules:
- Work only inside this worktree; do not touch files outside it.
- Never push, and never commit to the base branch; commit on the current branch.
- Commit your change with a clear message, then exit with status 0 to signal done.
- Do not print or store secrets."""


def build_prompt(task: TaskRecord, worktree: Path) -> str:
    parts = [
        f"Task ({task.task_type}):\n{task.description}",
        f"Repository worktree: {worktree.name} on branch {task.branch}, based on {task.base_branch}.",
        SAFETY_RULES,
    ]
    failure = task.failure_context or {}
    if task.retry_count and failure:
        lines = ["Previous attempt failed. What we captured:"]
        for key in ("code", "exit_code", "message", "error_output", "ci_output", "review_comments",
                    "modified_files", "diff"):
            if failure.get(key):
                lines.append(f"- {key}: {failure[key]}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


async def plan_for_task(parts: "EngineParts", task: TaskRecord, worktree: Path) -> SpawnPlan:
    from fleet_tui.infra.agents import build_argv

    profile = parts.profile(task.agent)
    prompt = build_prompt(task, worktree)
    prompt_file = None
    if profile.prompt_via == "file":
        prompt_file = parts.prompt_path(task.id)
        prompt_file.parent.mkdir(parents=True, exist_ok=True)
        prompt_file.write_text(prompt)
    argv = build_argv(profile, model=task.model, prompt_file=prompt_file, workdir=worktree)
    env = parts.secrets.issue(profile, task.id)
    if env:  # names only: values never reach the database
        await parts.audit(task, "secrets_issued", {"names": sorted(env)})
    return SpawnPlan(argv=argv, prompt=prompt, prompt_via=profile.prompt_via, env=env)
