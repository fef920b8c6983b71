"""Per-request trace id and one JSON access line per request.

The trace id is bound in a context variable for the whole request, so the conductor's
spawn (which reuses the current trace id) and every log line it writes carry it; the task
row stores it, so the monitor and retries log under the same id later. The caller gets it
back in X-Trace-Id. A caller may pass X-Request-Id (shape-checked) to choose it."""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet_tui.engine.ledger.tracing import new_id, trace

log = logging.getLogger("fleet_tui.api.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}\Z")


class InFlight:
    """How many requests are being served right now (for metrics and drain logs)."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0


class RequestTrace:
    def __init__(self, app: ASGIApp, in_flight: InFlight) -> None:
        self.app = app
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        trace_id = supplied if _REQUEST_ID.match(supplied) else new_id()
        status = 500
        started = time.perf_counter()

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-trace-id", trace_id.encode("ascii"))]}
            await send(message)

        self.in_flight.count += 1
        self.in_flight.total += 1
        try:
            with trace(trace_id):
                await self.app(scope, receive, send_with_trace)
        finally:
            self.in_flight.count -= 1
            with trace(trace_id):
                # the path only: query strings and headers may carry things not for logs
                log.info("%s %s %s", scope["method"], scope["path"], status, extra={
                    "method": scope["method"], "path": scope["path"], "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
