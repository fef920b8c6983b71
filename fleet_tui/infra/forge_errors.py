"""Forge errors, a small hierarchy so the monitor can degrade only its forge checks (defined
in domain with the error catalogue; named here where the forges import them)."""

from __future__ import annotations

from fleet_tui.domain.errors import ForgeBudgetExceeded, ForgeError, ForgeRateLimited, ForgeUnavailable

__all__ = ["ForgeBudgetExceeded", "ForgeError", "ForgeRateLimited", "ForgeUnavailable"]
