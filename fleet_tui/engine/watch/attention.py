"""Agents that need a person, and agents that died under a running task.

needs_input: when a running agent's latest output matches its profile's waiting text, the
task is flagged (a flag, not a status), the operator notified once per wait, and, if the
profile opts in, the profile's answer typed for it; the flag clears when output moves on.

resume: an agent whose process vanished while its task ran is continued with the
profile's resume command (where its CLI has one), at most max_resumes times; otherwise
the caller fails the task and the retry engine takes over."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fleet_tui.domain.models import TaskPatch, TaskRecord
from fleet_tui.engine.ports import AuditNote, Notify, TaskPatcher, Workplace
from fleet_tui.infra.agents import AgentProfile, waits_for_input
from fleet_tui.infra.protocols import AgentLaunch

if TYPE_CHECKING:
    from fleet_tui.engine.spawn.spawner import SpawnPlan

log = logging.getLogger(__name__)
TAIL_LINES = 5
RESUME_PROMPT = "Your previous run was interrupted. Continue the task in this worktree, commit, and exit 0.\n"


class PlanResume(Protocol):
    """The launch plan that continues a task's agent in its worktree (spawn.prompting.resume_plan)."""

    def __call__(self, task: TaskRecord, worktree: Path, *, prompt: str) -> Awaitable[SpawnPlan]: ...


class Attention:
    def __init__(self, *, profiles: Mapping[str, AgentProfile], place: Workplace, patch: TaskPatcher,
                 notify: Notify, audit: AuditNote, plan_resume: PlanResume, max_resumes: int = 2) -> None:
        self._profiles = profiles
        self._place = place
        self._patch = patch
        self._notify = notify
        self._audit = audit
        self._plan_resume = plan_resume
        self.max_resumes = max_resumes
        self._seen_output: dict[str, float] = {}  # task id -> output time last inspected

    async def check(self, task: TaskRecord) -> TaskRecord:
        """Flag or clear needs_input; reads the log tail only when output changed."""
        profile = self._profiles.get(task.agent or "")
        if profile is None or not profile.waiting_patterns:
            return task
        runtime = self._place.runtime_for(task.runtime)
        output_at = await runtime.last_output_at(task.id)
        if output_at is None or self._seen_output.get(task.id) == output_at:
            return task
        self._seen_output[task.id] = output_at
        waiting = waits_for_input(profile, "\n".join(await runtime.tail(task.id, TAIL_LINES)))
        if waiting == task.needs_input:
            return task
        task = await self._patch(task, TaskPatch(needs_input=waiting))
        if waiting:
            await self._notify(task, "needs_input", "the agent is waiting for input",
                               dedup_key=f"needs_input:{task.id}:{output_at:.3f}")
            if profile.answer_automatically and profile.auto_answer is not None:
                await runtime.send_input(task.id, profile.auto_answer)
                await self._audit(task, "auto_answered", {"profile": profile.name})
        return task

    async def resume(self, task: TaskRecord) -> TaskRecord | None:
        """Restart a vanished agent with its resume command; None when it cannot be."""
        profile = self._profiles.get(task.agent or "")
        resumes = int(task.metadata.get("resumes", 0))
        if profile is None or not profile.resume_command or resumes >= self.max_resumes \
                or not task.worktree_path:
            return None
        workdir = Path(task.worktree_path)
        if not workdir.is_dir():
            return None
        checkout = self._place.checkout(task)
        if checkout.tampering():  # never resumed on links the agent rewrote
            return None
        plan = await self._plan_resume(task, workdir, prompt=RESUME_PROMPT)
        state = await self._place.runtime_for(task.runtime).spawn(AgentLaunch(
            task_id=task.id, workdir=workdir, argv=plan.argv, prompt=plan.prompt,
            prompt_via=profile.prompt_via, stream=plan.stream, agent=profile.name, egress=plan.egress,
            env={**plan.env, "FLEET_TASK_ID": task.id, "FLEET_ATTEMPT": str(task.retry_count + 1)},
            git_admin=checkout.admin, git_common=checkout.common, git_branch=checkout.branch))
        await self._audit(task, "resumed", {"resume": resumes + 1, "profile": profile.name})
        log.info("resumed the agent of task %s with its profile's resume command", task.id)
        return await self._patch(task, TaskPatch(metadata={"resumes": resumes + 1}, needs_input=False,
                                                 **({"tmux_session": state.ref} if task.runtime == "tmux"
                                                    else {"container_id": state.ref})))

    def forget(self, task_id: str) -> None:
        self._seen_output.pop(task_id, None)
