"""Step adapters: what a step does. Each is `async (step, ctx) -> output dict` and fails by
raising. Built in: spawn_agent, run_reviewer, notify, run_command, call_webhook,
capture_failure, transition_task. Tests and plugins register more by name."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Awaitable, Callable, Mapping

from fleet_tui.domain.errors import StepFailed as StepFailed  # in the error catalogue
from fleet_tui.domain.models import Operator, SpawnRequest, TaskRecord, Tier
from fleet_tui.engine.events.policy import Sequence, Step
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.events.step_services import StepServices
from fleet_tui.engine.events.transitions import conclude_review, open_review, retry_or_abandon, reviewer_spec

OUTPUT_TAIL_CHARS = 4000


@dataclass
class StepContext:
    operator_id: str
    event_type: str
    sequence: Sequence
    context: dict[str, Any]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # earlier steps' outputs
    services: StepServices | None = None  # what the built-in steps use of the engine
    trace_id: str | None = None

    @property
    def task_id(self) -> str | None:
        value = self.context.get("task_id")
        return str(value) if value else None

    def need_services(self, step: Step) -> StepServices:
        if self.services is None:
            raise StepFailed(f"step {step.name} ({step.adapter}) needs the engine's services")
        return self.services

    async def task(self, step: Step) -> TaskRecord:
        services = self.need_services(step)
        if not self.task_id:
            raise StepFailed(f"step {step.name} ({step.adapter}) needs task_id in the context")
        return await services.get_task(self.task_id)


Adapter = Callable[[Step, StepContext], Awaitable[Mapping[str, Any]]]


class AdapterRegistry:
    def __init__(self, adapters: Mapping[str, Adapter] | None = None) -> None:
        self._adapters: dict[str, Adapter] = dict(adapters or {})

    def register(self, name: str, adapter: Adapter) -> None:
        self._adapters[name] = adapter

    def get(self, name: str) -> Adapter | None:
        return self._adapters.get(name)

    def names(self) -> list[str]:
        return sorted(self._adapters)


def builtin_adapters() -> AdapterRegistry:
    return AdapterRegistry({
        "spawn_agent": spawn_agent, "run_reviewer": run_reviewer, "notify": notify,
        "run_command": run_command, "call_webhook": call_webhook,
        "capture_failure": capture_failure, "transition_task": transition_task,
    })


# --- the built-ins ---------------------------------------------------------------------------


async def spawn_agent(step: Step, ctx: StepContext) -> dict[str, Any]:
    """Spawn a task for the run's operator from params merged over the context's fields."""
    services = ctx.need_services(step)
    from fleet_tui.store import routes as route_store

    async with services.db.system(kind="read") as conn:
        identity = await route_store.operator_identity(conn, ctx.operator_id)
    if identity is None:
        raise StepFailed(f"operator {ctx.operator_id} is unknown; it cannot spawn")
    operator = Operator(id=ctx.operator_id, tier=Tier(identity[0]), is_admin=identity[1])
    fields = {k: ctx.context[k] for k in SpawnRequest.model_fields if k in ctx.context}
    fields.update(step.params)
    result = await services.spawn(operator, SpawnRequest.model_validate(fields))
    if result.task is None:  # queued over the fleet's capacity: the queue admits it when room frees
        return {"task_id": None, "created": False, "status": "queued", "queue_id": result.queue_id}
    return {"task_id": result.task.id, "created": result.created, "status": str(result.task.status)}


async def run_reviewer(step: Step, ctx: StepContext) -> dict[str, Any]:
    """One reviewer on the task's diff, through the review pipeline: the configured reviewer
    named by params.reviewer, else the first of params.focus. Skipped (no verdict expected)
    when the pipeline has no such reviewer or the task is no longer under review."""
    services = ctx.need_services(step)
    task = await ctx.task(step)
    pipeline = services.reviews()
    spec = reviewer_spec(pipeline, step)
    if spec is None:
        return {"skipped": True, "reason": f"no reviewer configured for focus {step.params.get('focus')!r}"}
    if task.status != TaskStatus.REVIEWING:
        return {"skipped": True, "reason": f"task is {task.status}, not reviewing"}
    verdict: dict[str, Any] = (await pipeline.review(services.review_host, task, spec)).to_dict()
    return verdict


async def notify(step: Step, ctx: StepContext) -> dict[str, Any]:
    kind = str(step.params.get("kind", ctx.event_type))
    summary = str(ctx.context.get("summary") or step.params.get("summary") or kind)
    services = ctx.need_services(step)
    if ctx.task_id:
        task = await ctx.task(step)
        await services.notify(task, kind, summary, dedup_key=terminal_key(task, kind))
    else:
        await services.notify_operator(ctx.operator_id, kind, summary)
    return {"kind": kind, "summary": summary}


def terminal_key(task: TaskRecord, kind: str) -> str | None:
    """A terminal task's own notification kind is recorded once per task, whether the
    route or the conductor records it first (INV-018 without duplicates)."""
    from fleet_tui.domain.status import TERMINAL_NOTIFICATION
    from fleet_tui.store.notifications import terminal_dedup_key

    terminal = TERMINAL_NOTIFICATION.get(TaskStatus(task.status))
    return terminal_dedup_key(task.id) if terminal is not None and terminal[0] == kind else None


async def run_command(step: Step, ctx: StepContext) -> dict[str, Any]:
    """params.argv (a list, never a shell line), run in the task's worktree or params.cwd."""
    argv = step.params.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise StepFailed(f"step {step.name}: params.argv must be a non-empty list of strings")
    cwd = step.params.get("cwd")
    if cwd is None and ctx.task_id and ctx.services is not None:
        cwd = (await ctx.task(step)).worktree_path
    timeout_s = float(step.params.get("timeout_s", 300))
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise StepFailed(f"step {step.name}: {argv[0]} ran longer than {timeout_s:g}s") from None
    text = out.decode(errors="replace")[-OUTPUT_TAIL_CHARS:]
    if proc.returncode != 0:
        raise StepFailed(f"step {step.name}: {argv[0]} exited {proc.returncode}: {text[-500:]}")
    return {"exit_code": proc.returncode, "output": text}


async def call_webhook(step: Step, ctx: StepContext) -> dict[str, Any]:
    """POST {event_type, sequence, step, context} as JSON to params.url; 2xx is success."""
    import httpx  # lazily: httpx pulls in rich, which the engine must not import

    url = step.params.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise StepFailed(f"step {step.name}: params.url must be an http(s) URL")
    body = {"event_type": ctx.event_type, "sequence": ctx.sequence.name, "step": step.name,
            "context": ctx.context, "trace_id": ctx.trace_id}
    async with httpx.AsyncClient(timeout=float(step.params.get("timeout_s", 10))) as client:
        try:
            response = await client.post(url, json=body, headers=step.params.get("headers") or {})
        except httpx.HTTPError as exc:
            raise StepFailed(f"step {step.name}: webhook unreachable: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise StepFailed(f"step {step.name}: webhook answered {response.status_code}")
    return {"status_code": response.status_code}


async def capture_failure(step: Step, ctx: StepContext) -> dict[str, Any]:
    """The task's failure context (captured now if the monitor did not already), with the
    failure reason as its classification."""
    services = ctx.need_services(step)
    task = await ctx.task(step)
    context = task.failure_context
    if not context:
        from fleet_tui.domain.models import TaskPatch
        from fleet_tui.engine.attempts.failure import capture_task_failure

        context = await capture_task_failure(task, place=services.place, forge=services.forge,
                                             worktrees=services.worktrees, exit_code=task.exit_code)
        await services.patch(task, TaskPatch(failure_context=context))
    return {**context, "classification": task.failure_reason or "unknown"}


async def transition_task(step: Step, ctx: StepContext) -> dict[str, Any]:
    """params.to: a task status (no-op when already there), 'reviewing' (opens the review of
    the sequence's reviewers), 'review_outcome' (their verdicts -> ready or rejected) or
    'retry_or_abandon' (the retry policy)."""
    services = ctx.need_services(step)
    task = await ctx.task(step)
    target = str(step.params.get("to", ""))
    if target == "reviewing":
        return await open_review(services, task, ctx.sequence)
    if target == "review_outcome":
        return await conclude_review(services, task, ctx.sequence)
    if target == "retry_or_abandon":
        return await retry_or_abandon(services, task, actor="router")
    try:
        status = TaskStatus(target)
    except ValueError:
        raise StepFailed(f"step {step.name}: params.to {target!r} is not a task status") from None
    if task.status == status:
        return {"status": str(status), "changed": False}
    moved = await services.move(task, status, actor="router", reason=f"route step {step.name}")
    return {"status": str(moved.status), "changed": True}
