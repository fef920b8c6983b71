"""`fleet-tui agents`: each profile as this machine has it (agent_probe) and what routing will
do with it: the task types it is the default for, and where they go when it cannot run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fleet_tui.config import Settings


def _routing(settings: Settings, profiles: dict[str, Any], usable: dict[str, bool]) -> dict[str, list[str]]:
    from fleet_tui.engine.choice.agent_choice import PROFILE_DEFAULT_ROUTES
    from fleet_tui.engine.choice.routing import merge_routes

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
    from fleet_tui.engine.choice.agent_choice import why_not_ready

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


def version_warnings(report: list[dict[str, Any]]) -> list[str]:
    """One line per installed CLI outside its proven range, or whose --help lost a flag."""
    warnings = []
    for entry in report:
        if not entry.get("path") or entry.get("path") == "(built in)":
            continue
        if entry.get("in_proven_range") is False:
            warnings.append(f"{entry['name']} {entry['version']} is outside the proven range "
                            f"{entry['proven_versions']}")
        if entry.get("flags_ok") is False:
            warnings.append(f"{entry['name']}: --help no longer lists {', '.join(entry['missing_flags'])}")
    return warnings


class AgentWarnings:
    """The version warnings for the health panel, probed beside the engine (node CLIs take
    seconds to say their version) once, then again every `max_age_s`; never awaited by a read."""

    def __init__(self, settings: Settings, *, max_age_s: float = 3600.0) -> None:
        self._settings = settings
        self._max_age_s = max_age_s
        self._warnings: list[str] = []
        self._probed_at: float | None = None
        self._probing: asyncio.Task[None] | None = None

    def current(self) -> list[str]:
        """What the last probe found; starts a probe when none ran lately."""
        stale = self._probed_at is None or time.monotonic() - self._probed_at > self._max_age_s
        if stale and (self._probing is None or self._probing.done()):
            self._probing = asyncio.create_task(self._probe(), name="agent-version-probe")
        return list(self._warnings)

    async def _probe(self) -> None:
        try:
            self._warnings = version_warnings(await agents_report(self._settings))
        except Exception as exc:  # a probe that fails says so instead of a warning it could not make
            self._warnings = [f"agent CLIs could not be probed ({type(exc).__name__})"]
        self._probed_at = time.monotonic()

    async def settled(self) -> list[str]:
        """The warnings once the probe running now (if any) has ended."""
        self.current()
        if self._probing is not None:
            await asyncio.shield(self._probing)
        return list(self._warnings)

    def close(self) -> None:
        if self._probing is not None and not self._probing.done():
            self._probing.cancel()
