"""`fleet-tui image build`: the agent image a container runs, built locally (no registry).
Exit codes: 0 built or up to date, 1 a build step failed, 2 bad input, 3 the --base image is
not on the engine, 6 a tool the build needs (Docker engine, mmdebstrap, npm) is missing."""

from __future__ import annotations

import argparse
import sys
import time


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("image", help="build the agent images containers run")
    verbs = parser.add_subparsers(dest="image_verb", metavar="ACTION", required=True)
    build = verbs.add_parser("build", help="build an image with git and the pinned agent CLIs")
    build.add_argument("--agent", default="all", metavar="AGENT",
                       help="claude, codex, gemini, aider, opencode or all (default all)")
    build.add_argument("--base", metavar="IMAGE",
                       help="a local image with git, python3 and /bin/sh (default: fleet-debian-slim:bookworm,"
                            " made here with mmdebstrap)")
    build.add_argument("--force", action="store_true", help="rebuild even when the image is up to date")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from fleet_tui.config import load_settings
    from fleet_tui.engine.spawn.agent_images import build_agent_image

    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    tag = build_agent_image(load_settings(), agent=args.agent, base=args.base, force=args.force,
                            progress=progress)
    print(tag)
    return 0
