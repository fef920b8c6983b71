"""`fleet-tui`: argument parsing only. Verbs live in fleet_tui/commands/ (one module each,
discovered); with no verb the control room opens, with --headless the server runs.
Expected failures print one line to stderr naming the field and the rule, and exit with
the error catalogue's code (domain/errors.py: 2 bad input or configuration, 3 not found,
4 refused, 5 wrong status); never a traceback. A reader that closes the pipe early (`fleet-tui status | head -3`) ends the
command quietly with 141, as `cat` killed by SIGPIPE does."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import NoReturn
from collections.abc import Sequence

from fleet_tui import commands
from fleet_tui.config import Settings, load_settings
from fleet_tui.domain.errors import ConfigError, FleetError, face_of
from fleet_tui.domain.text import one_line

PROG = "fleet-tui"
EXIT_BAD_INPUT = 2
EXIT_CLOSED_PIPE = 128 + 13  # SIGPIPE


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the rule and where to read more), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def run_ui(settings: Settings, *, observe: bool = False) -> int:
    """Open the Textual control room on these settings (observe: over a fleet whose
    conductors run elsewhere)."""
    from fleet_tui.ui.launch import run

    return run(settings, observe=observe)


def run_headless(settings: Settings) -> int:
    """The engine and its HTTP API without Textual, in one event loop, until SIGTERM."""
    import asyncio

    from fleet_tui.api.server import serve_api
    from fleet_tui.engine.session import run_headless as serve

    asyncio.run(serve(settings, face=serve_api))
    return 0


def build_parser(*, verbs: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="A control room for a fleet of AI coding agents.",
                           add_help=verbs)
    parser.add_argument("--headless", action="store_true", help="run the engine and HTTP API, no UI")
    parser.add_argument("--listen", metavar="HOST:PORT", help="where --headless serves the API (api.listen)")
    parser.add_argument("--attach", metavar="DATABASE_URL",
                        help="open the control room on the fleet in this database; its conductors run elsewhere")
    if not verbs:
        return parser
    subparsers = parser.add_subparsers(dest="command", metavar="VERB")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        register = getattr(importlib.import_module(f"{commands.__name__}.{module.name}"), "register", None)
        if register is not None:
            register(subparsers)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The control room's own flags alone need no verb modules (which import the engine,
    key handling, the database tools): those are loaded only when something else (a verb,
    a bad flag, --help) is on the line. Half a second of the first frame went on them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = build_parser(verbs=False).parse_known_args(argv)
    if rest or any(arg in ("-h", "--help") for arg in argv):
        return build_parser().parse_args(argv)
    return args


def _dispatch(args: argparse.Namespace) -> int:
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    if args.attach:
        if args.headless:
            raise ConfigError("--attach opens the control room on a fleet run elsewhere; it cannot be"
                              " combined with --headless")
        return run_ui(load_settings(database={"url": args.attach}), observe=True)
    settings = load_settings(**({"api": {"listen": args.listen}} if args.listen else {}))
    return run_headless(settings) if args.headless else run_ui(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # here, so that a closed pipe is seen below and not at exit
        return code
    except FleetError as exc:
        print(f"{PROG}: {one_line(str(exc))}", file=sys.stderr)
        return face_of(exc).exit_code
    except NotImplementedError as exc:
        print(f"{PROG}: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_CLOSED_PIPE
    except KeyboardInterrupt:
        return 130


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush of what is still
    buffered does not fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
