"""Errors the engine raises and the faces translate. Messages name the field and the rule."""

from __future__ import annotations

from enum import StrEnum


class FleetError(Exception):
    """Base of every error fleet_tui raises on purpose."""


class ConfigError(FleetError):
    """Configuration is invalid; the message names the field and the rule."""


class ValidationFailed(FleetError, ValueError):
    """User input broke a rule. `field` names the input, `rule` the rule broken."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class InvalidTransitionError(FleetError):
    def __init__(self, message: str, *, current: str, target: str) -> None:
        super().__init__(message)
        self.current = current
        self.target = target


class StaleVersionError(FleetError):
    """The row changed since it was read (optimistic concurrency lost)."""

    def __init__(self, task_id: str, expected_version: int) -> None:
        super().__init__(f"task {task_id} is no longer at version {expected_version}")
        self.task_id = task_id
        self.expected_version = expected_version


class LeaseLostError(FleetError):
    """This conductor no longer holds the task's lease: its write was fenced off."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"lease on task {task_id} is no longer held; write refused")
        self.task_id = task_id


class NotFoundError(FleetError):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident} not found")
        self.what = what
        self.ident = ident


class TaskLiveError(FleetError):
    """An action that needs a terminal task was asked of a live one (e.g. delete)."""


class RefusedError(FleetError):
    """Policy refuses the request (a tier, a limit, a budget) and nothing was made: every
    face answers it the same way (HTTP 403, CLI exit 4, a "denied" line in the UI)."""


class PermissionDeniedError(RefusedError):
    """The operator may not do this (tier or ownership)."""


class BudgetRefused(RefusedError):
    """The operator's credit budget refuses every option for this task."""

    def __init__(self, message: str, *, task_type: str, refused: list[str]) -> None:
        super().__init__(message)
        self.task_type = task_type
        self.refused = refused


class SpawnDeniedError(RefusedError):
    """The governor refused admission; the message explains the limit."""

    def __init__(self, message: str, *, operator_id: str, tier: str, live: int, limit: int) -> None:
        super().__init__(message)
        self.operator_id = operator_id
        self.tier = tier
        self.live = live
        self.limit = limit


RUNTIME_UNAVAILABLE = "runtime_unavailable"  # a task's failure_reason while its runtime is down


class RuntimeUnavailableError(FleetError):
    """The runtime a task needs cannot be reached (no Docker engine, no tmux): refused
    before anything is made; a task waiting for it spends no retry budget."""

    def __init__(self, runtime: str, message: str) -> None:
        super().__init__(message)
        self.runtime = runtime


class ImageMissingError(RuntimeUnavailableError):
    """The Docker engine answers but has no image for the agent: the operator builds it
    (a conflict with the fleet's state, not an outage); its tasks wait like the engine's."""


class SpawnErrorCode(StrEnum):
    WORKTREE_FAILED = "WORKTREE_FAILED"
    INSTALL_FAILED = "INSTALL_FAILED"
    PROCESS_FAILED = "PROCESS_FAILED"
    TIMEOUT = "TIMEOUT"


class SpawnError(FleetError):
    def __init__(self, code: SpawnErrorCode | str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = SpawnErrorCode(code)
        self.detail = message
