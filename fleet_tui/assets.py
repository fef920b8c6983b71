"""Where the files shipped beside the code are: the SQL migrations (sql/) and the control
room's stylesheets (styles/). Their one copy lives at the repository's top level, beside
fleet_tui/; a wheel carries them inside the package (pyproject.toml's force-include), so an
installed fleet_tui finds fleet_tui/sql, and a source checkout or editable install ../sql.
A leaf module: it imports nothing of fleet_tui, so every layer may use it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

PACKAGE = Path(__file__).resolve().parent

Asset = Literal["sql", "styles"]


def asset_dir(name: Asset) -> Path:
    """The folder holding `name`: inside the package when installed from a wheel, else the
    repository's top-level one."""
    for candidate in (PACKAGE / name, PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"fleet_tui's {name}/ is neither in the package ({PACKAGE / name}) nor beside it "
        f"({PACKAGE.parent / name}): the installation is incomplete, reinstall fleet-tui")
