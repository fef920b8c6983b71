"""Commands an observer face sends through the database to the conductors of a fleet:
which verbs exist, what arguments each takes, and how a FleetError travels back.

Validation runs before anything is written, so bad input is refused with the field and
the rule and leaves no row behind."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from fleet_tui.domain import errors
from fleet_tui.domain.errors import (
    FleetError,
    NotFoundError,
    RuntimeUnavailableError,
    SpawnDeniedError,
    ValidationFailed,
)
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.validation import validated


class CommandVerb(StrEnum):
    SPAWN = "spawn"
    STOP = "stop"
    RETRY = "retry"
    DELETE = "delete"
    MERGE = "merge"
    LOGS = "logs"
    DIFF = "diff"


class CommandStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


FINISHED = frozenset({CommandStatus.DONE, CommandStatus.FAILED})
TASK_VERBS = frozenset(CommandVerb) - {CommandVerb.SPAWN}
READ_VERBS = frozenset({CommandVerb.LOGS, CommandVerb.DIFF})
TASK_ID_RE = re.compile(r"^[a-z0-9]{6,32}\Z")  # fleet_tasks_id_check
MAX_LOG_LINES = 5_000
MAX_LOG_CURSOR = 2**63 - 1  # a bigint: whatever stores or forwards a cursor can hold it
INTERNAL_ERROR = "internal"


def validate_command(verb: str, task_id: str | None, args: dict[str, Any] | None
                     ) -> tuple[CommandVerb, str | None, dict[str, Any]]:
    """(verb, task_id, normalised args), or ValidationFailed naming the field and rule."""
    try:
        known = CommandVerb(verb)
    except ValueError:
        raise ValidationFailed("verb", f"must be one of {', '.join(sorted(CommandVerb))}") from None
    args = dict(args or {})
    if known == CommandVerb.SPAWN:
        if task_id is not None:
            raise ValidationFailed("task_id", "must be empty for spawn (the conductor makes the task)")
        return known, None, {"request": _spawn_request(args)}
    if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id):
        raise ValidationFailed("task_id", "must be 6-32 lowercase letters or digits")
    allowed = {"lines", "from"} if known == CommandVerb.LOGS else set()
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationFailed("args", f"{known} takes {', '.join(sorted(allowed)) or 'no arguments'};"
                                       f" got {', '.join(unknown)}")
    if known == CommandVerb.LOGS:
        lines = args.get("lines", 200)
        if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= MAX_LOG_LINES:
            raise ValidationFailed("lines", f"must be a whole number from 1 to {MAX_LOG_LINES}")
        args = {"lines": lines} if "from" not in args else {"lines": lines, "from": log_cursor(args["from"])}
    return known, task_id, args


def log_cursor(value: Any, field: str = "from") -> int:
    """A cursor a logs read returned, or ValidationFailed naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LOG_CURSOR:
        raise ValidationFailed(field, f"must be a whole number from 0 to {MAX_LOG_CURSOR}"
                                      " (the cursor a logs read returned)")
    return value


def _spawn_request(args: dict[str, Any]) -> dict[str, Any]:
    if set(args) != {"request"} or not isinstance(args["request"], dict):
        raise ValidationFailed("args", "spawn takes one argument, request (the spawn form's fields)")
    request = validated(SpawnRequest, args["request"])
    return request.model_dump(mode="json", exclude_none=True)


# --- errors across the database: the kind, the user-facing message, simple attributes ----

def describe_error(exc: FleetError) -> tuple[str, str, dict[str, Any]]:
    simple = {k: v for k, v in vars(exc).items()
              if not k.startswith("_") and (v is None or isinstance(v, (str, int, float, bool)))}
    return type(exc).__name__, str(exc), simple


def rebuild_error(kind: str | None, message: str, detail: dict[str, Any] | None) -> FleetError:
    """The FleetError a face can handle as if the conductor had raised it in-process."""
    detail = detail or {}
    try:
        if kind == "ValidationFailed":
            return ValidationFailed(str(detail.get("field", "value")), str(detail.get("rule", message)))
        if kind == "SpawnDeniedError":
            return SpawnDeniedError(message, operator_id=str(detail.get("operator_id", "")),
                                    tier=str(detail.get("tier", "")), live=int(detail.get("live", 0)),
                                    limit=int(detail.get("limit", 0)))
        if kind == "NotFoundError":
            return NotFoundError(str(detail["what"]), str(detail["ident"]))
        if kind == "RuntimeUnavailableError":
            return RuntimeUnavailableError(str(detail["runtime"]), message)
    except (KeyError, TypeError, ValueError):
        pass
    return _same_kind(kind, message, detail)


def _same_kind(kind: str | None, message: str, detail: dict[str, Any]) -> FleetError:
    """An error of the catalogue's class of that name, with the message and simple attributes
    it was raised with (its constructor is not run: the attributes came across as they were),
    so every face answers it as if raised here; FleetError for a kind this side does not know."""
    cls = vars(errors).get(kind or "")
    if not (isinstance(cls, type) and issubclass(cls, FleetError)):
        return FleetError(message)
    rebuilt = cls.__new__(cls)
    Exception.__init__(rebuilt, message)
    vars(rebuilt).update(detail)
    return rebuilt
