"""A FleetError as the control room says it: the severity and title come from the error
catalogue (domain/errors.py), the same one the API's statuses and the CLI's exit codes read."""

from __future__ import annotations

from dataclasses import dataclass

from fleet_tui.domain.errors import FleetError, Severity, face_of


@dataclass(frozen=True)
class ErrorNotice:
    message: str
    title: str  # "stop: denied", or the catalogue's word alone
    severity: Severity


def error_notice(exc: FleetError, action: str | None = None) -> ErrorNotice:
    face = face_of(exc)
    return ErrorNotice(str(exc), f"{action}: {face.title}" if action else face.title, face.severity)


def admission_line(exc: FleetError) -> str:
    """The spawn form's line for a spawn the engine refused or could not make."""
    return f"{face_of(exc).title}: {exc}"
