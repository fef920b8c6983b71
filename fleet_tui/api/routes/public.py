"""Routes without a bearer token: health, the JWKS document, and signed external events."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from fleet_tui.api.deps import conductor_of
from fleet_tui.api.errors import error_json, error_responses
from fleet_tui.api.schemas import Accepted, ExternalEvent, FieldError, HealthOut, Jwks
from fleet_tui.engine import api_support

router = APIRouter(tags=["public"])

SIGNATURE_HEADER = "X-Hub-Signature-256"  # GitHub's name, so forge webhooks work as they are
MAX_EVENT_BYTES = 64 * 1024


@router.get("/healthz", response_model=HealthOut,
            responses={503: {"model": HealthOut,
                             "description": "database unreachable, monitor not running, or draining"}})
async def healthz(request: Request) -> JSONResponse:
    """200 while the database answers, the monitor loop runs and the server is not
    draining; 503 otherwise, saying which."""
    conductor = conductor_of(request)
    monitor = conductor.monitor.health() if conductor.monitor is not None else {"running": False}
    down = await api_support.database_down(conductor)
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
    responses=error_responses(400, 401, 413, 503),
    openapi_extra={
        "description": (f"An external event (forge webhook, alert). The raw body must be signed: "
                        f"`{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body with the "
                        f"configured events secret>`. Published on the engine's bus for the "
                        f"event router."),
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": ExternalEvent.model_json_schema()}}},
    },
)
async def external_event(request: Request) -> JSONResponse:
    secret = request.app.state.settings.api.events_secret
    if not secret:
        return error_json(503, "external events are disabled: set api.events_secret "
                               "(FLEET_API__EVENTS_SECRET)")
    body = await _read_capped(request)
    if body is None:
        return error_json(413, f"event body exceeds {MAX_EVENT_BYTES} bytes")
    # The signature is checked on the raw bytes before anything parses them.
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), request.headers.get(SIGNATURE_HEADER, "").encode()):
        return error_json(401, f"missing or bad {SIGNATURE_HEADER} signature")
    try:
        event = ExternalEvent.model_validate_json(body)
    except ValidationError as exc:
        errors = [FieldError(field=".".join(str(p) for p in e["loc"]) or "body", rule=e["msg"])
                  for e in exc.errors()]
        return error_json(400, "invalid event: " + "; ".join(f"{e.field}: {e.rule}" for e in errors[:5]),
                          errors)
    event_id = api_support.publish_external_event(
        conductor_of(request), kind=event.type, source=event.source, task_id=event.task_id,
        summary=event.summary, data=event.data)
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


def sign_event(secret: str, body: bytes) -> str:
    """The signature header value a sender computes (for tests and scripts)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
