"""Forge errors, a small hierarchy so the monitor can degrade only its forge checks."""

from __future__ import annotations

from fleet_tui.domain.errors import FleetError


class ForgeError(FleetError):
    """A forge call failed (a command error, an answer that made no sense)."""


class ForgeUnavailable(ForgeError):
    """The forge cannot be reached at all: gh missing, not authenticated, network down."""


class ForgeRateLimited(ForgeError):
    """The forge asked us to slow down; no calls are made until retry_after_s has passed."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ForgeBudgetExceeded(ForgeError):
    """The fleet spent its own per-hour budget of forge calls; a slot frees in retry_after_s."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
