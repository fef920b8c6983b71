"""Pick the forge the settings name: local (the embedded default) or github."""

from __future__ import annotations

from fleet_tui.config import ForgeSettings
from fleet_tui.infra.forge_github import GithubForge
from fleet_tui.infra.forge_local import LocalForge
from fleet_tui.infra.protocols import Forge


def build_forge(settings: ForgeSettings, *, git_timeout_s: float = 60.0) -> Forge:
    if settings.kind == "github":
        # repo unset: gh infers it from the remote of the repository it runs in
        return GithubForge(budget_per_hour=settings.gh_budget_per_hour)
    return LocalForge(ci_command=settings.ci_command, ci_timeout_s=settings.ci_timeout_s,
                      git_timeout_s=git_timeout_s)
