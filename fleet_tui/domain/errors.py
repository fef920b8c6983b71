"""Every error fleet_tui raises on purpose, and the one catalogue of how each face answers
it: an HTTP status (api), an exit code (commands) and a notice (ui). Each class names its
`face`; the faces read it through `face_of` and write no mapping of their own, so a new
error answers like its parent until it says otherwise. Messages name the field and the rule.

    answer        HTTP  exit  notice                 errors
    BAD_INPUT     400   2     warning "invalid"      ValidationFailed
    NOT_ALLOWED   401   2     error "not allowed"    AuthError
    REFUSED       403   4     error "denied"         RefusedError (tier, limit, budget)
    NOT_FOUND     404   3     error "not found"      NotFoundError
    CONFLICT      409   5     error "conflict"       TaskLiveError, StaleVersionError,
                                                     InvalidTransitionError, LeaseLostError
    MISSING_IMAGE 409   4     error "no image"       ImageMissingError
    UNAVAILABLE   503   4     error "unavailable"    RuntimeUnavailableError, ForgeUnavailable,
                                                     ForgeRateLimited, ForgeBudgetExceeded,
                                                     NoConductorAnswered, ReviewTimedOut
    SCHEMA_EDITED 503   4     error "refused"        MigrationEditedError
    CONFIGURATION 503   2     error "configuration"  ConfigError, KeyStoreError, MissingExtraError,
                                                     DatabaseUnavailableError
    FAILED        503   2     error "failed"         FleetError and the rest: SpawnError,
                                                     ForgeError, StepFailed, ImageBuildError

Exit codes are README's (2 bad input or configuration, 3 not found, 4 refused, 5 conflict);
HTTP statuses are SPEC's. No error answers the API's generic 500, which is kept for bugs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import ClassVar, Literal

Severity = Literal["information", "warning", "error"]  # a UI notice's, as Textual names them


@dataclass(frozen=True)
class FaceAnswer:
    """How every face answers one kind of error."""

    http_status: int
    exit_code: int
    severity: Severity
    title: str  # the UI notice's title; the spawn form's first word


BAD_INPUT = FaceAnswer(400, 2, "warning", "invalid")
NOT_ALLOWED = FaceAnswer(401, 2, "error", "not allowed")
REFUSED = FaceAnswer(403, 4, "error", "denied")
NOT_FOUND = FaceAnswer(404, 3, "error", "not found")
CONFLICT = FaceAnswer(409, 5, "error", "conflict")
MISSING_IMAGE = FaceAnswer(409, 4, "error", "no image")  # the operator builds it: no outage
UNAVAILABLE = FaceAnswer(503, 4, "error", "unavailable")
SCHEMA_EDITED = FaceAnswer(503, 4, "error", "refused")
CONFIGURATION = FaceAnswer(503, 2, "error", "configuration")
FAILED = FaceAnswer(503, 2, "error", "failed")


class FleetError(Exception):
    """Base of every error fleet_tui raises on purpose."""

    face: ClassVar[FaceAnswer] = FAILED

    def face_answer(self) -> FaceAnswer:
        return type(self).face


def face_of(exc: FleetError) -> FaceAnswer:
    """The catalogue's answer to this error, for every face."""
    return exc.face_answer()


class ConfigError(FleetError):
    """Configuration is invalid; the message names the field and the rule."""

    face = CONFIGURATION


class ValidationFailed(FleetError, ValueError):
    """User input broke a rule. `field` names the input, `rule` the rule broken."""

    face = BAD_INPUT

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class InvalidTransitionError(FleetError):
    face = CONFLICT

    def __init__(self, message: str, *, current: str, target: str) -> None:
        super().__init__(message)
        self.current = current
        self.target = target


class StaleVersionError(FleetError):
    """The row changed since it was read (optimistic concurrency lost)."""

    face = CONFLICT

    def __init__(self, task_id: str, expected_version: int) -> None:
        super().__init__(f"task {task_id} is no longer at version {expected_version}")
        self.task_id = task_id
        self.expected_version = expected_version


class LeaseLostError(FleetError):
    """This conductor no longer holds the task's lease: its write was fenced off."""

    face = CONFLICT

    def __init__(self, task_id: str) -> None:
        super().__init__(f"lease on task {task_id} is no longer held; write refused")
        self.task_id = task_id


class NotFoundError(FleetError):
    face = NOT_FOUND

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident} not found")
        self.what = what
        self.ident = ident


class TaskLiveError(FleetError):
    """An action that needs a terminal task was asked of a live one (e.g. delete)."""

    face = CONFLICT


class RefusedError(FleetError):
    """Policy refuses the request (a tier, a limit, a budget) and nothing was made: every
    face answers it the same way (HTTP 403, CLI exit 4, a "denied" line in the UI)."""

    face = REFUSED


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

    face = UNAVAILABLE

    def __init__(self, runtime: str, message: str) -> None:
        super().__init__(message)
        self.runtime = runtime


class ImageMissingError(RuntimeUnavailableError):
    """The Docker engine answers but has no image for the agent: the operator builds it
    (a conflict with the fleet's state, not an outage); its tasks wait like the engine's."""

    face = MISSING_IMAGE


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


# --- errors of the outer rooms, kept here so the catalogue is whole ----------------------


class DatabaseUnavailableError(FleetError):
    """The database cannot be reached or refused us; the message is one clear line."""

    face = CONFIGURATION  # a wrong URL is the usual cause at a shell; the API adds Retry-After


class MigrationEditedError(FleetError):
    """An applied migration's file no longer matches what ran: the schema and the files
    disagree, and applying more on top would build on a guess."""

    face = SCHEMA_EDITED

    def __init__(self, *, version: int, name: str, checksum: str, recorded: str) -> None:
        super().__init__(
            f"migration {version:03d}_{name} was edited after it was applied (checksum "
            f"{recorded[:12]} recorded, {checksum[:12]} now): restore the file and put the "
            f"change in a new migration")
        self.version = version


class AuthError(FleetError):
    """A token was refused. The reason is short and never echoes token contents."""

    face = NOT_ALLOWED

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyStoreError(FleetError):
    """The key directory is unusable; the message names the path, never key material."""

    face = CONFIGURATION


class MissingExtraError(FleetError, ImportError):
    """An optional part is used without its packages installed."""

    face = CONFIGURATION


class ImageBuildError(FleetError):
    """A build step failed: one line naming the step; exit_code as `image build` documents
    (1 failed, 2 bad input, 3 base not found, 6 a tool missing)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def face_answer(self) -> FaceAnswer:
        return replace(type(self).face, exit_code=self.exit_code)


class ForgeError(FleetError):
    """A forge call failed (a command error, an answer that made no sense)."""


class ForgeUnavailable(ForgeError):
    """The forge cannot be reached at all: gh missing, not authenticated, network down."""

    face = UNAVAILABLE


class ForgeRateLimited(ForgeError):
    """The forge asked us to slow down; no calls are made until retry_after_s has passed."""

    face = UNAVAILABLE

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ForgeBudgetExceeded(ForgeError):
    """The fleet spent its own per-hour budget of forge calls; a slot frees in retry_after_s."""

    face = UNAVAILABLE

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NoConductorAnswered(FleetError):
    """A command found no conductor to carry it out in time."""

    face = UNAVAILABLE


class ReviewTimedOut(FleetError):
    """A reviewer gave no verdict within the review's timeout."""

    face = UNAVAILABLE


class StepFailed(FleetError):
    """An event route's adapter could not do its step; the message says why."""
