"""`fleet-tui agents`: every agent profile, the CLI found for it, its version against the
range it was proven on, whether its flags are still accepted (a --help probe, no model call),
whether credentials are present (names only), and what routing will do with it."""

from __future__ import annotations

import argparse
import asyncio
import json

from fleet_tui.config import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("agents", help="the agent CLIs installed here and what routing does with them")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run_agents)


def _mark(value: bool | None, yes: str, no: str, unknown: str = "-") -> str:
    return unknown if value is None else (yes if value else no)


def run_agents(args: argparse.Namespace) -> int:
    from fleet_tui.domain.text import strip_ansi
    from fleet_tui.engine.choice.agents_report import agents_report

    report = asyncio.run(agents_report(load_settings()))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for entry in report:
        version = entry["version"] or "-"
        proven = entry["proven_versions"] or "not proven"
        print(f"{entry['name']:<9} {('installed' if entry['path'] else 'missing'):<9} "
              f"version {version:<10} proven {proven:<18} "
              f"{_mark(entry['in_proven_range'], 'in range', 'OUT OF RANGE'):<12} "
              f"flags {_mark(entry['flags_ok'], 'ok', 'CHANGED')}  "
              f"credentials {', '.join(entry['credentials']) or 'none'}")
        for line in entry["routing"] + entry["problems"]:
            print(f"          {strip_ansi(line)}")
    return 0
