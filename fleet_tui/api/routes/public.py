"""Routes without a bearer token: health, the JWKS document, and signed external events."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from fleet_tui.api.deps import fleet_of, support_of
from fleet_tui.api.errors import error_json, error_responses
from fleet_tui.api.schemas import Accepted, ExternalEvent, FieldError, HealthOut, Jwks
from fleet_tui.domain import webhooks
from fleet_tui.engine import api_support

router = APIRouter(tags=["public"])

MAX_EVENT_BYTES = 64 * 1024


@router.get("/healthz", response_model=HealthOut,
            responses={503: {"model": HealthOut,
                             "description": "database unreachable, monitor not running, or draining"}})
async def healthz(request: Request) -> JSONResponse:
    """200 while the database answers, the monitor loop runs and the server is not
    draining; 503 otherwise, saying which."""
    loop = fleet_of(request).monitor
    monitor = loop.health() if loop is not None else {"running": False}
    down = await support_of(request).database_down()
    if request.app.state.stopping.is_set():
        body, code = HealthOut(status="draining", monitor=monitor), 503
    elif down is not None:
        body, code = HealthOut(status="database unavailable", monitor=monitor, database=down), 503
    elif monitor.get("running"):
        body, code = HealthOut(status="ok", monitor=monitor), 200
    else:
        body, code = HealthOut(status="monitor not running", monitor=monitor), 503
    headers = {"Retry-After": str(api_support.RETRY_AFTER_S)} if down is not None else None
    return JSONResponse(body.model_dump(mode="json"), status_code=code, headers=headers)


@router.get("/.well-known/jwks.json", response_model=Jwks)
async def jwks(request: Request) -> JSONResponse:
    """Public keys that verify this server's tokens; retired keys carry `exp`."""
    document = request.app.state.keystore.jwks()
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


@router.post(
    "/api/events", status_code=202, response_model=Accepted,
    responses=error_responses(400, 401, 409, 413, 503),
    openapi_extra={
        "description": ("An external event (forge webhook, alert), signed with the Standard "
                        f"Webhooks scheme: `{webhooks.ID_HEADER}` (becomes the event id), "
                        f"`{webhooks.TIMESTAMP_HEADER}` (unix seconds, within the tolerance "
                        f"window) and `{webhooks.SIGNATURE_HEADER}: v1,<base64 HMAC-SHA256 of "
                        "'<id>.<timestamp>.<body>'>` with one of the configured keys. An id seen "
                        "before is refused with 409 (replay). Published on the engine's bus for "
                        "the event router."),
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": ExternalEvent.model_json_schema()}}},
    },
)
async def external_event(request: Request) -> JSONResponse:
    settings = request.app.state.settings.api
    if not settings.events_secret:
        return error_json(503, "external events are disabled: set api.events_secret "
                               "(FLEET_API__EVENTS_SECRET)")
    body = await _read_capped(request)
    if body is None:
        return error_json(413, f"event body exceeds {MAX_EVENT_BYTES} bytes")
    # The signature is checked on the raw bytes before anything parses them.
    try:
        event_id = webhooks.verify([k.get_secret_value() for k in settings.events_secret],
                                   request.headers, body, now=time.time(),
                                   tolerance_s=settings.events_tolerance_s)
    except webhooks.SignatureRefused as exc:
        return error_json(401, str(exc))
    try:
        event = ExternalEvent.model_validate_json(body)
    except ValidationError as exc:
        errors = [FieldError(field=".".join(str(p) for p in e["loc"]) or "body", rule=e["msg"])
                  for e in exc.errors()]
        return error_json(400, "invalid event: " + "; ".join(f"{e.field}: {e.rule}" for e in errors[:5]),
                          errors)
    accepted = await support_of(request).publish_external_event(
        event_id=event_id, kind=event.type, source=event.source,
        task_id=event.task_id, summary=event.summary, data=event.data,
        replay_window_s=2 * settings.events_tolerance_s)
    if not accepted:
        return error_json(409, f"event {event_id} was already received ({webhooks.ID_HEADER} replayed)")
    return JSONResponse(Accepted(id=event_id).model_dump(), status_code=202)


async def _read_capped(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_EVENT_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
