"""Trace ids carried through a request, its spawn, the monitor and retries, and the JSON
log format that prints them."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)
_span_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("span_id", default=None)


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def current_trace_id() -> str | None:
    return _trace_id.get()


@contextmanager
def trace(trace_id: str | None = None) -> Iterator[str]:
    """Bind a trace id (a new one unless given) for the code inside."""
    tid = trace_id or _trace_id.get() or new_id()
    token = _trace_id.set(tid)
    try:
        yield tid
    finally:
        _trace_id.reset(token)


@contextmanager
def span(name: str) -> Iterator[str]:
    sid = new_id()
    parent = _span_id.get()
    token = _span_id.set(sid)
    started = time.perf_counter()
    try:
        yield sid
    finally:
        _span_id.reset(token)
        logging.getLogger("fleet.span").debug(
            "span %s", name,
            extra={"span": name, "span_id": sid, "parent_span_id": parent,
                   "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
        )


class JsonFormatter(logging.Formatter):
    _skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "trace_id": _trace_id.get(),
            "span_id": _span_id.get(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout if json_lines else sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(LINE_FORMAT))
    _log_through(handler, level)


LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_through(handler: logging.Handler, level: int) -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("asyncpg.pool").addFilter(OneLineOutage())


class OneLineOutage(logging.Filter):
    """The pool's own reconnect warnings during a database outage: one line with the reason
    instead of a traceback each time."""

    def filter(self, record: logging.LogRecord) -> bool:
        from fleet_tui.store.errors import describe_failure, is_connection_lost

        if record.exc_info and record.exc_info[1] is not None and is_connection_lost(record.exc_info[1]):
            record.msg = f"{record.getMessage()}: {describe_failure(record.exc_info[1])}"
            record.args = None
            record.exc_info = None
        return True


LOG_FILE_BYTES = 5_000_000
LOG_FILE_KEEP = 3


def log_to_file(path: Path, *, level: int = logging.INFO) -> Path:
    """The control room's log: a rotating file (the terminal belongs to the UI). Returns
    the path, which the health panel shows."""
    from logging.handlers import RotatingFileHandler

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_KEEP, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    _log_through(handler, level)
    return path
