"""`fleet-tui token mint|rotate`: tokens for the local install and tests, key rotation.

Keys live under Settings.data_dir / "keys". Register with `add_token_commands(subparsers)`;
each sub-command sets `handler` to a function(args) -> int exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from fleet_tui.api.keys import KeyStore, KeyStoreError
from fleet_tui.config import Settings, load_settings
from fleet_tui.domain.errors import ConfigError
from fleet_tui.domain.models import Tier


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


def add_token_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    token = subparsers.add_parser("token", help="mint API tokens, rotate signing keys")
    verbs = token.add_subparsers(dest="token_command", required=True, metavar="{mint,rotate}")

    mint_parser = verbs.add_parser("mint", help="print a signed token for an operator")
    mint_parser.add_argument("--operator", required=True, metavar="ID", help="operator id")
    mint_parser.add_argument("--tier", required=True, choices=[t.value for t in Tier])
    mint_parser.add_argument("--admin", action="store_true", help="grant the admin flag")
    mint_parser.add_argument("--ttl", type=int, default=3600, metavar="SECONDS",
                             help="lifetime in seconds (default 3600)")
    mint_parser.add_argument("--json", action="store_true", help="print {token, kid, exp}")
    mint_parser.set_defaults(handler=run_token_mint)

    rotate_parser = verbs.add_parser(
        "rotate", help="new signing key; the old one verifies through the rollover window")
    rotate_parser.set_defaults(handler=run_token_rotate)
    return token


def _settings_or_exit() -> Settings | None:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"fleet-tui token: {exc}", file=sys.stderr)
        return None


def run_token_mint(args: argparse.Namespace) -> int:
    import jwt  # here: every other verb starts without the HTTP stack

    from fleet_tui.api.auth import MAX_TTL_S, mint

    settings = _settings_or_exit()
    if settings is None:
        return 2
    if not 0 < args.ttl <= MAX_TTL_S:
        print(f"fleet-tui token mint: --ttl must be between 1 and {MAX_TTL_S}", file=sys.stderr)
        return 2
    keystore = KeyStore(keys_dir(settings))
    try:
        token = mint(keystore, operator_id=args.operator, tier=args.tier, is_admin=args.admin,
                     ttl_s=args.ttl, issuer=settings.api.issuer, audience=settings.api.audience)
    except ValidationError:
        print("fleet-tui token mint: --operator must be 1-128 characters of letters, digits "
              "and ._@:-", file=sys.stderr)
        return 2
    except (KeyStoreError, OSError) as exc:
        print(f"fleet-tui token mint: {exc}", file=sys.stderr)
        return 1
    if args.json:
        # Our own fresh token: read kid and exp back rather than recompute them.
        claims = jwt.decode(token, options={"verify_signature": False})
        kid = jwt.get_unverified_header(token)["kid"]
        print(json.dumps({"token": token, "kid": kid, "exp": claims["exp"]}))
    else:
        print(token)
    return 0


def run_token_rotate(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    if settings is None:
        return 2
    try:
        new_kid = KeyStore(keys_dir(settings)).rotate()
    except (KeyStoreError, OSError) as exc:
        print(f"fleet-tui token rotate: {exc}", file=sys.stderr)
        return 1
    print(new_kid)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m fleet_tui.api.token_cli token mint ...`) for dev and tests."""
    parser = argparse.ArgumentParser(prog="fleet-tui")
    add_token_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
