"""Domain errors -> HTTP answers, all in one body shape (ErrorBody), and the OpenAPI
document adjusted to say so (400 for bad input instead of FastAPI's 422).

Messages come from the engine's own errors, which name the field and the rule; unexpected
exceptions answer a generic 500 with the trace id and are logged, never echoed."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fleet_tui.api.schemas import ErrorBody, FieldError
from fleet_tui.domain.errors import FleetError, ValidationFailed, face_of
from fleet_tui.engine import api_support
from fleet_tui.engine.ledger.tracing import current_trace_id

log = logging.getLogger(__name__)

_DESCRIPTIONS = {
    400: "invalid input; `errors` names each field and the rule it broke",
    401: "missing, invalid or expired bearer token",
    403: "the operator's tier, admin flag, governor limit or credit budget refuses this",
    404: "no such task visible to this operator",
    409: "the task is in a status that does not allow this",
    413: "request body too large",
    503: "the database is unreachable (Retry-After says when to try again), the service is not "
         "ready, the feature is not configured, or what it needs (runtime, forge, a conductor) "
         "cannot do it now; the detail says which",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error codes it may answer, each with ErrorBody."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


def error_json(status: int, detail: str, errors: list[FieldError] | None = None,
               headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(detail=detail, errors=errors or [], trace_id=current_trace_id())
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _request_invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(field=_field_name(tuple(e.get("loc", ()))), rule=str(e.get("msg", "invalid")))
              for e in exc.errors()]
    summary = "; ".join(f"{e.field}: {e.rule}" for e in errors[:5])
    return error_json(400, f"invalid request: {summary}", errors)


async def _fleet_error(_: Request, exc: Exception) -> JSONResponse:
    """Every FleetError answers the catalogue's status (domain/errors.py) with its message."""
    assert isinstance(exc, FleetError)
    errors = [FieldError(field=exc.field, rule=exc.rule)] if isinstance(exc, ValidationFailed) else None
    return error_json(face_of(exc).http_status, str(exc), errors)


async def _http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    return error_json(exc.status_code, detail, headers=dict(exc.headers or {}))


_last_outage_log = 0.0


async def _database_away(request: Request, exc: Exception) -> JSONResponse:
    """The database cannot be reached: 503 with Retry-After and the reason in one line (the
    log says so at most every few seconds, without a traceback). Anything else of these
    exception types is unexpected."""
    global _last_outage_log
    reason = api_support.database_failure(exc)
    if reason is None:
        return await _unexpected(request, exc)
    if time.monotonic() - _last_outage_log > api_support.RETRY_AFTER_S:
        _last_outage_log = time.monotonic()
        log.warning("answering 503: %s", reason, extra={"path": request.url.path})
    return error_json(503, f"{reason}; try again shortly",
                      headers={"Retry-After": str(api_support.RETRY_AFTER_S)})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in %s %s", request.method, request.url.path,
              exc_info=(type(exc), exc, exc.__traceback__))
    return error_json(500, f"internal error; the server log has trace {current_trace_id()}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(FleetError, _fleet_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for failure in api_support.DATABASE_FAILURES:
        app.add_exception_handler(failure, _database_away)
    app.add_exception_handler(Exception, _unexpected)


def install_openapi(app: FastAPI) -> None:
    """FastAPI documents 422 for every route with inputs; this app answers 400 instead."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description,
                              routes=app.routes)
            for path_item in doc.get("paths", {}).values():
                for operation in path_item.values():
                    responses = operation.get("responses", {})
                    responses.pop("422", None)
                    for code, response in responses.items():
                        # Errors are JSON even on routes whose success is text/plain.
                        content = response.get("content", {})
                        if int(code) >= 400 and content and "application/json" not in content:
                            response["content"] = {"application/json": next(iter(content.values()))}
            schemas = doc.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
