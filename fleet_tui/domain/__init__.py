"""Pure types and rules: no I/O, imports nothing of the project outside domain."""

from fleet_tui.domain.errors import (
    ConfigError,
    FleetError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    SpawnDeniedError,
    SpawnError,
    SpawnErrorCode,
    StaleVersionError,
    TaskLiveError,
    ValidationFailed,
)
from fleet_tui.domain.models import (
    CIStatus,
    Operator,
    RuntimeKind,
    SpawnRequest,
    SpawnResult,
    StatusSummary,
    TaskPatch,
    TaskQuery,
    TaskRecord,
    TaskType,
    Tier,
)
from fleet_tui.domain.status import (
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    TaskStatus,
    check_transition,
    is_terminal,
)

__all__ = [
    "CIStatus", "ConfigError", "FleetError", "InvalidTransitionError", "LIVE_STATUSES",
    "NotFoundError", "Operator", "PermissionDeniedError", "RuntimeKind", "SpawnDeniedError",
    "SpawnError", "SpawnErrorCode", "SpawnRequest", "SpawnResult", "StaleVersionError",
    "StatusSummary", "TERMINAL_STATUSES", "TRANSITIONS", "TaskLiveError", "TaskPatch",
    "TaskQuery", "TaskRecord", "TaskStatus", "TaskType", "Tier", "ValidationFailed",
    "check_transition", "is_terminal",
]
