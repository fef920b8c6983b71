"""Fleet routes: spawn, status, configuration, metrics, test notification, reputation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import PlainTextResponse

from fleet_tui.api.auth import ensure_all_allowed
from fleet_tui.api.deps import FleetDep, OperatorDep, SovereignDep, SupportDep, builder
from fleet_tui.api.errors import error_responses
from fleet_tui.api.schemas import (
    AGENT_PATTERN,
    IDEMPOTENCY_PATTERN,
    MODEL_PATTERN,
    Accepted,
    ReputationOut,
    SpawnBody,
)
from fleet_tui.domain.models import Operator, SpawnResult, StatusSummary, TaskType
from fleet_tui.engine import api_support

router = APIRouter(tags=["fleet"])

SpawnOperator = Annotated[Operator, Depends(builder("spawn"))]
NotifyOperator = Annotated[Operator, Depends(builder("sending a test notification"))]


@router.post(
    "/api/fleet/spawn", status_code=201, response_model=SpawnResult,
    responses={
        200: {"model": SpawnResult, "description": "a task with this idempotency key exists; it is returned"},
        202: {"model": SpawnResult, "description": "admitted but queued until the fleet has capacity"},
        **error_responses(400, 401, 403, 409, 503),
    },
)
async def spawn(
    body: SpawnBody, response: Response, conductor: FleetDep, op: SpawnOperator,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_PATTERN,
                                                  description="repeat-safe key; wins over the body's")] = None,
) -> SpawnResult:
    """201 with the new task (a saga failure shows as a failed task with its reason);
    403 with the governor's explanation when the tier limit is reached; 503 when the task's
    runtime (the Docker engine, tmux) cannot be reached, 409 when the engine has no image for
    the agent (the answer names the command that builds it): nothing is made."""
    result = await conductor.spawn(op, body.to_request(idempotency_key))
    if result.queued:
        response.status_code = 202
    elif not result.created:
        response.status_code = 200
    return result


@router.get("/api/fleet/status", response_model=StatusSummary, responses=error_responses(400, 401, 403))
async def fleet_status(
    conductor: FleetDep, op: OperatorDep,
    all: Annotated[bool, Query(description="every operator's tasks (admin only)")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> StatusSummary:
    ensure_all_allowed(op, all)
    return await conductor.status(op, all_operators=all, limit=limit)


@router.get("/api/fleet/config", response_model=dict[str, Any], responses=error_responses(401, 403))
async def fleet_config(conductor: FleetDep, op: SovereignDep) -> dict[str, Any]:
    """The effective settings, secrets redacted. Sovereign tier only."""
    return api_support.config_view(conductor.settings)


@router.get(
    "/api/fleet/metrics", response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus text exposition (prometheus_client's)"},
               **error_responses(401)},
)
async def fleet_metrics(support: SupportDep, op: OperatorDep) -> Response:
    """The fleet's figures (fleet-wide, from the database) and this conductor's counters and
    histograms; any valid token may scrape."""
    body, content_type = await support.metrics_text(op)
    return Response(body, media_type=content_type)


@router.post("/api/fleet/notifications/test", status_code=202, response_model=Accepted,
             responses=error_responses(401, 403))
async def notification_test(support: SupportDep, op: NotifyOperator) -> Accepted:
    """Records a notification of type test; the outbox relay delivers it to the channels."""
    notification_id = await support.send_test_notification(op)
    return Accepted(id=str(notification_id))


@router.get("/api/reputation/query", response_model=ReputationOut, responses=error_responses(400, 401))
async def reputation_query(
    support: SupportDep, op: OperatorDep,
    agent: Annotated[str, Query(pattern=AGENT_PATTERN)],
    model: Annotated[str | None, Query(pattern=MODEL_PATTERN)] = None,
    task_type: TaskType | None = None,
) -> ReputationOut:
    """{score, confidence, n} of an agent (and model) from the runs this operator may see."""
    rep = await support.reputation_query(op, agent=agent, model=model, task_type=task_type)
    return ReputationOut(agent=agent, model=model, task_type=None if task_type is None else str(task_type),
                         score=rep.score, confidence=rep.confidence, n=rep.n)
