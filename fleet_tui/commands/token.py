"""`fleet-tui token mint|rotate|revoke|list`: tokens for the local install and tests, key
rotation with the configured rollover window, revocation effective at once.

Keys live under Settings.data_dir / "keys" (engine/kit/keys.py); tokens are minted by
engine/kit/tokens.py, whose tokens the HTTP face verifies. `register(subparsers)` adds the
verb; each sub-command sets `handler` to a function(args) -> int exit code.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, UTC
from typing import TYPE_CHECKING

from pydantic import ValidationError

from fleet_tui.config import Settings, load_settings
from fleet_tui.domain.errors import ConfigError, KeyStoreError
from fleet_tui.domain.models import Tier

if TYPE_CHECKING:
    from fleet_tui.engine.kit.keys import KeyStore

KID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")


def keystore_for(settings: Settings) -> KeyStore:
    """The install's signing keys (imported here: every other verb starts without the
    cryptography stack)."""
    from fleet_tui.engine.kit.tokens import keystore_for as install_keys

    return install_keys(settings)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_token_commands(subparsers)


def add_token_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    token = subparsers.add_parser("token", help="mint API tokens, rotate signing keys")
    verbs = token.add_subparsers(dest="token_command", required=True, metavar="{mint,rotate,revoke,list}")

    mint_parser = verbs.add_parser("mint", help="print a signed token for an operator")
    mint_parser.add_argument("--operator", required=True, metavar="ID", help="operator id")
    mint_parser.add_argument("--tier", required=True, choices=[t.value for t in Tier])
    mint_parser.add_argument("--admin", action="store_true", help="grant the admin flag")
    mint_parser.add_argument("--ttl", type=int, default=3600, metavar="SECONDS",
                             help="lifetime in seconds (default 3600; at most api.max_token_ttl_s)")
    mint_parser.add_argument("--json", action="store_true", help="print {token, kid, exp}")
    mint_parser.set_defaults(handler=run_token_mint)

    rotate_parser = verbs.add_parser(
        "rotate", help="new signing key; the old one verifies through the rollover window")
    rotate_parser.set_defaults(handler=run_token_rotate)

    revoke_parser = verbs.add_parser(
        "revoke", help="stop a signing key verifying now, in every conductor sharing the keys")
    revoke_parser.add_argument("kid", metavar="KID",
                               help="the key id (see `token list`); one starting with - goes after --")
    revoke_parser.set_defaults(handler=run_token_revoke)

    list_parser = verbs.add_parser("list", help="signing keys: current, retired, revoked")
    list_parser.add_argument("--json", action="store_true")
    list_parser.set_defaults(handler=run_token_list)
    return token


def _settings_or_exit() -> Settings | None:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"fleet-tui token: {exc}", file=sys.stderr)
        return None


def run_token_mint(args: argparse.Namespace) -> int:
    import jwt

    from fleet_tui.engine.kit.tokens import mint

    settings = _settings_or_exit()
    if settings is None:
        return 2
    max_ttl = settings.api.max_token_ttl_s
    if not 0 < args.ttl <= max_ttl:
        print(f"fleet-tui token mint: --ttl must be between 1 and {max_ttl} (api.max_token_ttl_s)",
              file=sys.stderr)
        return 2
    keystore = keystore_for(settings)
    try:
        token = mint(keystore, operator_id=args.operator, tier=args.tier, is_admin=args.admin,
                     ttl_s=args.ttl, issuer=settings.api.issuer, audience=settings.api.audience,
                     max_ttl_s=max_ttl)
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
        new_kid = keystore_for(settings).rotate()
    except (KeyStoreError, OSError) as exc:
        print(f"fleet-tui token rotate: {exc}", file=sys.stderr)
        return 1
    print(new_kid)
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    if settings is None:
        return 2
    if not KID_RE.match(args.kid):
        print("fleet-tui token revoke: KID must be 16-64 characters of letters, digits, _ and -",
              file=sys.stderr)
        return 2
    try:
        new_kid = keystore_for(settings).revoke(args.kid)
    except KeyError:
        print(f"fleet-tui token revoke: no signing key {args.kid} (see `fleet-tui token list`)", file=sys.stderr)
        return 3
    except (KeyStoreError, OSError) as exc:
        print(f"fleet-tui token revoke: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {args.kid}" + (f"; new signing key {new_kid}" if new_kid else ""))
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    if settings is None:
        return 2
    keystore = keystore_for(settings)
    try:
        entries = keystore.entries()
    except (KeyStoreError, OSError) as exc:
        print(f"fleet-tui token list: {exc}", file=sys.stderr)
        return 1
    now = keystore.clock()
    rows = []
    for e in entries:
        if e.revoked_at is not None:
            state = "revoked"
        elif e.retired_at is None:
            state = "current"
        else:
            state = "retired" if e.retired_at + keystore.rollover_s > now else "expired"
        rows.append({"kid": e.kid, "state": state, "created_at": _iso(e.created_at),
                     "retired_at": _iso(e.retired_at), "revoked_at": _iso(e.revoked_at)})
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['kid']}  {row['state']:<8} created {row['created_at']}")
    return 0


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m fleet_tui.commands.token token mint ...`) for dev and tests."""
    parser = argparse.ArgumentParser(prog="fleet-tui")
    add_token_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
