"""`fleet-tui token mint|rotate` handlers: real keys under FLEET_DATA_DIR, tokens that verify."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from fleet_tui.api.auth import verify
from fleet_tui.engine.kit.keys import JwksCache, KeyStore
from fleet_tui.commands.token import add_token_commands, main, run_token_mint, run_token_rotate
from fleet_tui.domain.models import Operator, Tier


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray fleet.toml from the working directory
    monkeypatch.delenv("FLEET_CONFIG_FILE", raising=False)
    monkeypatch.setenv("FLEET_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def mint_args(**overrides) -> argparse.Namespace:
    values = {"operator": "bob", "tier": "builder", "admin": False, "ttl": 3600, "json": False}
    values.update(overrides)
    return argparse.Namespace(**values)


def verifier_for(data_dir: Path) -> JwksCache:
    return JwksCache.for_keystore(KeyStore(data_dir / "keys"))


def test_mint_prints_a_token_that_verifies(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_token_mint(mint_args(admin=True, tier="sovereign")) == 0
    token = capsys.readouterr().out.strip()
    operator = verify(token, verifier_for(data_dir), issuer="fleet-tui", audience="fleet-tui")
    assert operator == Operator(id="bob", tier=Tier.SOVEREIGN, is_admin=True)


def test_mint_json_names_kid_and_exp(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_token_mint(mint_args(json=True, ttl=120)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kid"] == KeyStore(data_dir / "keys").current().kid
    claims = verify(out["token"], verifier_for(data_dir), issuer="fleet-tui",
                    audience="fleet-tui")
    assert claims.id == "bob"
    assert set(out) == {"token", "kid", "exp"}


def test_mint_refuses_bad_input_without_a_traceback(data_dir: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    assert run_token_mint(mint_args(operator="bob smith")) == 2
    assert "--operator" in capsys.readouterr().err
    assert run_token_mint(mint_args(ttl=0)) == 2
    assert "--ttl" in capsys.readouterr().err


def test_rotate_prints_the_new_kid_and_old_tokens_still_verify(
    data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run_token_mint(mint_args()) == 0
    old_token = capsys.readouterr().out.strip()
    verifier = verifier_for(data_dir)
    assert verify(old_token, verifier, issuer="fleet-tui", audience="fleet-tui").id == "bob"
    assert run_token_rotate(argparse.Namespace()) == 0
    new_kid = capsys.readouterr().out.strip()
    assert KeyStore(data_dir / "keys").current().kid == new_kid
    assert verify(old_token, verifier, issuer="fleet-tui", audience="fleet-tui").id == "bob"


def test_parser_wires_the_verbs_to_their_handlers(data_dir: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="fleet-tui")
    add_token_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["token", "mint", "--operator", "ann", "--tier", "observer"])
    assert args.handler is run_token_mint
    assert parser.parse_args(["token", "rotate"]).handler is run_token_rotate
    with pytest.raises(SystemExit):
        parser.parse_args(["token", "mint", "--operator", "ann", "--tier", "emperor"])
    capsys.readouterr()
    assert main(["token", "mint", "--operator", "ann", "--tier", "observer", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    assert verify(token, verifier_for(data_dir), issuer="fleet-tui",
                  audience="fleet-tui").tier is Tier.OBSERVER


def test_revoke_and_list(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_token_mint(mint_args()) == 0
    token = capsys.readouterr().out.strip()
    keystore = KeyStore(data_dir / "keys")
    kid = keystore.current().kid
    assert main(["token", "revoke", "not a kid"]) == 2
    assert main(["token", "revoke", "A" * 43]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "no signing key" in err and "Traceback" not in err
    assert main(["token", "revoke", kid]) == 0
    assert capsys.readouterr().out.startswith(f"revoked {kid}; new signing key ")
    with pytest.raises(Exception, match="unknown or retired"):
        verify(token, verifier_for(data_dir), issuer="fleet-tui", audience="fleet-tui")
    assert main(["token", "list", "--json"]) == 0
    states = {row["kid"]: row["state"] for row in json.loads(capsys.readouterr().out)}
    assert states[kid] == "revoked" and sorted(states.values()) == ["current", "revoked"]


def test_mint_refuses_a_ttl_over_the_configured_maximum(data_dir: Path, capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_API__MAX_TOKEN_TTL_S", "600")
    assert run_token_mint(mint_args(ttl=601)) == 2
    assert "api.max_token_ttl_s" in capsys.readouterr().err
    assert run_token_mint(mint_args(ttl=600)) == 0


def test_no_signing_key_id_starts_with_a_dash(data_dir: Path) -> None:
    """`token revoke -f4X...` read the key id as an option ("the following arguments are
    required: KID"): about 1 key in 64 could not be revoked as `token list` shows it."""
    store = KeyStore(data_dir / "keys")
    kids = [store.rotate() for _ in range(300)]
    assert not [kid for kid in kids if kid.startswith("-")]
