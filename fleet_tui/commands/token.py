"""`fleet-tui token mint|rotate|revoke|list` (implemented in fleet_tui.api.token_cli)."""

from __future__ import annotations

import argparse

from fleet_tui.api.token_cli import add_token_commands


def register(subparsers: argparse._SubParsersAction) -> None:
    add_token_commands(subparsers)
