"""`fleet-tui agents`: each profile as this machine has it (agent_probe) and what routing will
do with it: the task types it is the default for, and where they go when it cannot run."""

from __future__ import annotations

import asyncio
from typing import Any

from fleet_tui.config import Settings


def _routing(settings: Settings, profiles: dict[str, Any], usable: dict[str, bool]) -> dict[str, list[str]]:
    from fleet_tui.engine.agent_choice import PROFILE_DEFAULT_ROUTES
    from fleet_tui.engine.routing import merge_routes

    fallback = settings.agents.default_profile
    notes: dict[str, list[str]] = {name: [] for name in profiles}
    for task_type, route in merge_routes(settings.agents.routes, PROFILE_DEFAULT_ROUTES).items():
        if route.agent not in notes:
            continue
        if usable.get(route.agent):
            notes[route.agent].append(f"default for {task_type}")
        else:
            notes[route.agent].append(f"default for {task_type}, skipped: goes to {fallback}")
    if fallback in notes:
        notes[fallback].append("fallback for every task type")
    return notes


async def agents_report(settings: Settings) -> list[dict[str, Any]]:
    """One dict per profile (see AgentProbe), with `routing` lines; probes run in threads."""
    from fleet_tui.infra.agent_probe import probe
    from fleet_tui.infra.agents import load_profiles

    profiles = load_profiles(settings.agents.profiles)
    probes = await asyncio.gather(*(asyncio.to_thread(probe, p) for p in profiles.values()))
    from fleet_tui.engine.agent_choice import why_not_ready

    usable = {p.name: p.path is not None and p.flags_ok is not False
              and why_not_ready(settings, profiles[p.name]) is None for p in probes}
    routing = _routing(settings, profiles, usable)
    report = []
    for found in probes:
        entry = found.to_dict()
        entry["description"] = profiles[found.name].description
        entry["routing"] = routing.get(found.name, [])
        report.append(entry)
    return report
