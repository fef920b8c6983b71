"""Task routes: detail, logs (last N lines and a live stream), stop, retry (granting
permissions), answer, merge, delete.

Ownership is the conductor's: it reads the task as the verified operator (RLS hides other
tenants' rows) and refuses someone else's task as not found, so ids cannot be probed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from fleet_tui.api.deps import FleetDep, OperatorDep, builder
from fleet_tui.api.errors import error_responses
from fleet_tui.api.schemas import AnswerBody, LogsOut, RetryBody, TaskDetailOut
from fleet_tui.domain.models import TASK_ID_PATTERN, Operator, TaskRecord

router = APIRouter(prefix="/api/fleet/tasks", tags=["tasks"])

TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="task id")]
StopOperator = Annotated[Operator, Depends(builder("stop"))]
RetryOperator = Annotated[Operator, Depends(builder("retry"))]
MergeOperator = Annotated[Operator, Depends(builder("merge"))]
DeleteOperator = Annotated[Operator, Depends(builder("delete"))]
FINISHED_TAIL_LINES = 10_000
READ_ERRORS = error_responses(400, 401, 404)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409)


@router.get("/{task_id}", response_model=TaskDetailOut, responses=READ_ERRORS)
async def task_detail(task_id: TaskId, conductor: FleetDep, op: OperatorDep) -> TaskDetailOut:
    detail = await conductor.detail(op, task_id)
    return TaskDetailOut(task=detail.task, audit=detail.audit, executions=detail.executions)


@router.get("/{task_id}/logs", response_model=LogsOut, responses=READ_ERRORS)
async def task_logs(task_id: TaskId, conductor: FleetDep, op: OperatorDep,
                    lines: Annotated[int, Query(ge=1, le=10_000)] = 200) -> LogsOut:
    return LogsOut(task_id=task_id, lines=await conductor.logs(op, task_id, lines))


@router.get(
    "/{task_id}/logs/stream", response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "the agent's output, one line per line, as it is written; "
                                    "ends when the agent has exited, after max_seconds, or "
                                    "when the server shuts down"},
               **READ_ERRORS},
)
async def task_logs_stream(request: Request, task_id: TaskId, conductor: FleetDep, op: OperatorDep,
                           max_seconds: Annotated[float, Query(gt=0, le=3600)] = 300) -> Response:
    detail = await conductor.detail(op, task_id)  # ownership checked before the stream starts
    if detail.task.is_live:
        lines = conductor.follow_logs(op, task_id)
    else:  # a finished task's output will not grow: send what there is and end
        lines = _iterate(await conductor.logs(op, task_id, FINISHED_TAIL_LINES))
    stopping: asyncio.Event = request.app.state.stopping
    return StreamingResponse(bounded(lines, stopping, max_seconds), media_type="text/plain; charset=utf-8")


async def _iterate(lines: list[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def bounded(lines: AsyncIterator[str], stopping: asyncio.Event,
                  max_seconds: float) -> AsyncIterator[bytes]:
    """Lines until the source ends, the deadline passes or the server starts draining
    (a stream must not hold a graceful shutdown hostage)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    stop_wait = asyncio.ensure_future(stopping.wait())
    try:
        while True:
            nxt = asyncio.ensure_future(anext(lines))
            done, _ = await asyncio.wait({nxt, stop_wait}, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if nxt not in done:
                nxt.cancel()
                with suppress(asyncio.CancelledError, StopAsyncIteration):
                    await nxt
                return
            try:
                line = nxt.result()
            except StopAsyncIteration:
                return
            yield (line + "\n").encode("utf-8", "replace")
    finally:
        stop_wait.cancel()
        aclose = getattr(lines, "aclose", None)
        if aclose is not None:
            await aclose()


@router.post("/{task_id}/stop", response_model=TaskRecord, responses=WRITE_ERRORS)
async def stop_task(task_id: TaskId, conductor: FleetDep, op: StopOperator) -> TaskRecord:
    return await conductor.stop(op, task_id)


@router.post("/{task_id}/retry", response_model=TaskRecord, responses=WRITE_ERRORS)
async def retry_task(task_id: TaskId, conductor: FleetDep, op: RetryOperator,
                     body: RetryBody | None = None) -> TaskRecord:
    """Retry a failed or rejected task now; `allow` grants it permissions from now on."""
    return await conductor.retry(op, task_id, allow=body.allow if body else None)


@router.post("/{task_id}/answer", response_model=TaskRecord, responses=WRITE_ERRORS)
async def answer_task(task_id: TaskId, body: AnswerBody, conductor: FleetDep, op: RetryOperator) -> TaskRecord:
    """Answer an agent that waits for a person (needs_input): its session resumes with the text."""
    return await conductor.answer(op, task_id, body.text)


@router.post("/{task_id}/merge", response_model=TaskRecord, responses=WRITE_ERRORS)
async def merge_task(task_id: TaskId, conductor: FleetDep, op: MergeOperator) -> TaskRecord:
    return await conductor.merge(op, task_id)


@router.delete("/{task_id}", status_code=204, response_class=Response, responses=WRITE_ERRORS)
async def delete_task(task_id: TaskId, conductor: FleetDep, op: DeleteOperator) -> Response:
    await conductor.delete(op, task_id)
    return Response(status_code=204)
