"""`fleet-tui image build`, engine side: the profiles say what to install (their pinned
packages), infra/agent_image.py builds it."""

from __future__ import annotations

from collections.abc import Callable

from fleet_tui.config import Settings
from fleet_tui.infra.agent_image import IMAGE_AGENTS, build_image, default_cache_dir, plan_image
from fleet_tui.infra.agents import load_profiles

AGENT_CHOICES = (*IMAGE_AGENTS, "all")


def build_agent_image(settings: Settings, *, agent: str, base: str | None, force: bool,
                      progress: Callable[[str], None]) -> str:
    """Build the image for one agent (or all); returns its tag."""
    plan = plan_image(load_profiles(settings.agents.profiles), agent, base)
    progress(f"{plan.tag}: {', '.join(plan.packages)} on {plan.base}")
    return build_image(plan, cache_dir=default_cache_dir(), progress=progress, force=force)
