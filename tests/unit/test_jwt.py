"""Tokens and keys with real ES256 crypto: what verifies, what is refused, how rotation rolls.

The key store writes to a pytest tmp_path; a fake clock drives expiry and rollover."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet_tui.api.auth import AuthError, verify
from fleet_tui.engine.kit.tokens import mint
from fleet_tui.engine.kit.keys import JwksCache, KeyStore, KeyStoreError
from fleet_tui.domain.models import Operator, Tier

ISS = "fleet-tui-test"
AUD = "fleet-api-test"
DAY = 24 * 3600


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keystore(tmp_path: Path, clock: FakeClock) -> KeyStore:
    return KeyStore(tmp_path / "keys", clock=clock)


@pytest.fixture
def verifier(keystore: KeyStore) -> JwksCache:
    return JwksCache.for_keystore(keystore)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, claims: dict, sign) -> str:
    """A token built byte by byte, for the attacks pyjwt itself refuses to produce."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def claims_for(clock: FakeClock, **overrides) -> dict:
    now = int(clock())
    base = {"sub": "bob", "tier": "builder", "adm": False, "iss": ISS, "aud": AUD,
            "iat": now, "nbf": now, "exp": now + 3600, "jti": "j1"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def refused(token: str, verifier: JwksCache) -> str:
    with pytest.raises(AuthError) as caught:
        verify(token, verifier, issuer=ISS, audience=AUD)
    message = str(caught.value)
    for segment in token.split("."):
        if len(segment) > 8:  # no token contents echoed back
            assert segment not in message
    return message


# -- the happy path ---------------------------------------------------------------------------


def test_minted_token_verifies_to_the_operator(keystore: KeyStore, verifier: JwksCache) -> None:
    token = mint(keystore, operator_id="alice", tier=Tier.ARCHITECT, is_admin=True,
                 issuer=ISS, audience=AUD)
    assert verify(token, verifier, issuer=ISS, audience=AUD) == Operator(
        id="alice", tier=Tier.ARCHITECT, is_admin=True)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == keystore.current().kid


def test_mint_refuses_a_bad_operator_id_and_ttl(keystore: KeyStore) -> None:
    with pytest.raises(ValueError):
        mint(keystore, operator_id="has space", tier="builder", issuer=ISS, audience=AUD)
    with pytest.raises(ValueError):
        mint(keystore, operator_id="bob", tier="builder", ttl_s=0, issuer=ISS, audience=AUD)


# -- refusals ---------------------------------------------------------------------------------


def test_expired_token_is_refused_after_the_bounded_leeway(
    keystore: KeyStore, verifier: JwksCache, clock: FakeClock
) -> None:
    token = mint(keystore, operator_id="bob", tier="builder", ttl_s=60, issuer=ISS, audience=AUD)
    clock.advance(60 + 29)  # inside the 30 s leeway
    assert verify(token, verifier, issuer=ISS, audience=AUD).id == "bob"
    clock.advance(2)
    assert refused(token, verifier) == "token expired"
    with pytest.raises(ValueError):  # skew tolerance is bounded
        verify(token, verifier, issuer=ISS, audience=AUD, leeway_s=3600)


def test_token_from_the_future_is_refused(keystore: KeyStore, verifier: JwksCache,
                                          clock: FakeClock) -> None:
    token = mint(keystore, operator_id="bob", tier="builder", issuer=ISS, audience=AUD,
                 clock=lambda: clock() + 600)
    assert refused(token, verifier) == "token not yet valid"


def test_wrong_audience_and_issuer_are_refused(keystore: KeyStore, verifier: JwksCache) -> None:
    other_aud = mint(keystore, operator_id="bob", tier="builder", issuer=ISS, audience="other")
    other_iss = mint(keystore, operator_id="bob", tier="builder", issuer="evil", audience=AUD)
    assert refused(other_aud, verifier) == "wrong audience"
    assert refused(other_iss, verifier) == "wrong issuer"


def test_token_from_another_key_is_refused(tmp_path: Path, keystore: KeyStore,
                                           verifier: JwksCache, clock: FakeClock) -> None:
    ours = keystore.current().kid
    stranger = KeyStore(tmp_path / "stranger", clock=clock)
    foreign = mint(stranger, operator_id="bob", tier="builder", issuer=ISS, audience=AUD)
    assert refused(foreign, verifier) == "unknown or retired signing key"
    # The same stranger key, claiming our kid: the signature does not match our key.
    forged = jwt.encode(claims_for(clock), stranger.current().private_key, algorithm="ES256",
                        headers={"kid": ours})
    assert refused(forged, verifier) == "bad signature"


def test_alg_none_is_refused(keystore: KeyStore, verifier: JwksCache, clock: FakeClock) -> None:
    token = hand_made({"alg": "none", "typ": "JWT", "kid": keystore.current().kid},
                      claims_for(clock, tier="sovereign", adm=True), lambda _: b"")
    assert refused(token, verifier) == "algorithm not allowed"
    unsigned = token.rsplit(".", 1)[0] + "."
    assert refused(unsigned, verifier) == "algorithm not allowed"


def test_hs256_signed_with_the_public_key_is_refused(keystore: KeyStore, verifier: JwksCache,
                                                     clock: FakeClock) -> None:
    key = keystore.current()
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    token = hand_made({"alg": "HS256", "typ": "JWT", "kid": key.kid},
                      claims_for(clock, tier="sovereign", adm=True),
                      lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())
    assert refused(token, verifier) == "algorithm not allowed"


def test_tampered_payload_is_refused(keystore: KeyStore, verifier: JwksCache) -> None:
    token = mint(keystore, operator_id="bob", tier="observer", issuer=ISS, audience=AUD)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["tier"] = "sovereign"
    tampered = ".".join([header, b64(json.dumps(claims).encode()), signature])
    assert refused(tampered, verifier) == "bad signature"


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub", "tier"])
def test_missing_claims_are_refused(missing: str, keystore: KeyStore, verifier: JwksCache,
                                    clock: FakeClock) -> None:
    key = keystore.current()
    token = jwt.encode(claims_for(clock, **{missing: None}), key.private_key,
                       algorithm="ES256", headers={"kid": key.kid})
    assert refused(token, verifier) == f"missing claim {missing}"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"tier": "emperor"}, "unknown tier"),
     ({"adm": "true"}, "claim adm must be a boolean"),
     ({"sub": "bob; drop table"}, "invalid subject"),
     ({"exp": "never"}, "claim exp must be a number")],
)
def test_bad_claim_values_are_refused(overrides: dict, reason: str, keystore: KeyStore,
                                      verifier: JwksCache, clock: FakeClock) -> None:
    key = keystore.current()
    token = jwt.encode(claims_for(clock, **overrides), key.private_key, algorithm="ES256",
                       headers={"kid": key.kid})
    assert refused(token, verifier) == reason


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.one_of(st.text(max_size=300),
                         st.lists(st.text(alphabet="abcXYZ019-_=", max_size=60),
                                  min_size=1, max_size=4).map(".".join)))
def test_garbage_only_ever_raises_auth_error(garbage: str, verifier: JwksCache) -> None:
    with pytest.raises(AuthError):
        verify(garbage, verifier, issuer=ISS, audience=AUD)


# -- rotation and the JWKS cache ------------------------------------------------------------


def test_rotation_adds_a_key_and_the_old_one_verifies_until_the_window_ends(
    keystore: KeyStore, verifier: JwksCache, clock: FakeClock
) -> None:
    old_token = mint(keystore, operator_id="bob", tier="builder", ttl_s=3 * DAY,
                     issuer=ISS, audience=AUD)
    old_kid = keystore.current().kid
    assert verify(old_token, verifier, issuer=ISS, audience=AUD).id == "bob"

    clock.advance(10)
    new_kid = keystore.rotate()
    assert new_kid != old_kid and keystore.current().kid == new_kid
    assert {k["kid"] for k in keystore.jwks()["keys"]} == {old_kid, new_kid}
    new_token = mint(keystore, operator_id="carol", tier="builder", ttl_s=3 * DAY,
                     issuer=ISS, audience=AUD)
    # The cache learns the new kid on the miss, without waiting for its 5-minute TTL.
    assert verify(new_token, verifier, issuer=ISS, audience=AUD).id == "carol"
    assert verify(old_token, verifier, issuer=ISS, audience=AUD).id == "bob"

    clock.advance(DAY - 1)
    assert verify(old_token, verifier, issuer=ISS, audience=AUD).id == "bob"
    clock.advance(2)  # the rollover window is over, though the token itself is not expired
    assert refused(old_token, verifier) == "unknown or retired signing key"
    assert verify(new_token, verifier, issuer=ISS, audience=AUD).id == "carol"
    assert [k["kid"] for k in keystore.jwks()["keys"]] == [new_kid]


def test_rotation_prunes_key_files_past_the_window(keystore: KeyStore, clock: FakeClock) -> None:
    first = keystore.current().kid
    keystore.rotate()
    assert (keystore.directory / f"{first}.pem").exists()
    clock.advance(DAY + 1)
    keystore.rotate()
    assert not (keystore.directory / f"{first}.pem").exists()
    assert first not in (keystore.directory / "index.json").read_text()


def test_a_rotation_by_another_process_is_seen_without_restart(
    tmp_path: Path, keystore: KeyStore, verifier: JwksCache, clock: FakeClock
) -> None:
    mint(keystore, operator_id="bob", tier="builder", issuer=ISS, audience=AUD)
    elsewhere = KeyStore(keystore.directory, clock=clock)  # e.g. `fleet-tui token rotate`
    elsewhere.rotate()
    token = mint(elsewhere, operator_id="bob", tier="builder", issuer=ISS, audience=AUD)
    clock.advance(6)
    assert verify(token, verifier, issuer=ISS, audience=AUD).id == "bob"
    assert keystore.current().kid == elsewhere.current().kid


def test_jwks_cache_reloads_on_ttl_and_bounds_reloads_for_unknown_kids(
    keystore: KeyStore, verifier: JwksCache, clock: FakeClock
) -> None:
    kid = keystore.current().kid
    assert verifier.key_for(kid) is not None
    assert verifier.reloads == 1
    for _ in range(50):
        verifier.key_for(kid)
        verifier.key_for("random-kid-that-does-not-exist")
    assert verifier.reloads == 1  # neither known nor random kids reload within 5 s
    clock.advance(5)
    verifier.key_for("another-random-kid")
    verifier.key_for("yet-another-random-kid")
    assert verifier.reloads == 2  # one miss-reload, then bounded again
    clock.advance(300)
    verifier.key_for(kid)
    assert verifier.reloads == 3  # the 5-minute TTL


def test_cached_retired_key_stops_at_its_exp_even_without_reload(clock: FakeClock) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
           "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big")),
           "exp": int(clock()) + 100}
    cache = JwksCache(lambda: {"keys": [jwk, {"kty": "oct", "kid": "k2", "k": "c2VjcmV0"}]},
                      clock=clock)
    assert cache.key_for("k1") is not None
    assert cache.key_for("k2") is None  # symmetric keys in a JWKS are never honoured
    clock.advance(100)
    assert cache.key_for("k1") is None
    assert cache.reloads == 1


def test_failing_jwks_source_keeps_the_last_good_keys(keystore: KeyStore,
                                                      clock: FakeClock) -> None:
    calls = {"n": 0}

    def flaky() -> dict:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("jwks endpoint down")
        return keystore.jwks()

    cache = JwksCache(flaky, clock=clock)
    kid = keystore.current().kid
    assert cache.key_for(kid) is not None
    clock.advance(301)
    assert cache.key_for(kid) is not None
    assert calls["n"] == 2


# -- key files --------------------------------------------------------------------------------


def test_key_files_are_private_and_the_index_holds_no_secret(keystore: KeyStore) -> None:
    kid = keystore.current().kid
    keystore.rotate()
    assert stat.S_IMODE(keystore.directory.stat().st_mode) == 0o700
    for pem in keystore.directory.glob("*.pem"):
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    index = (keystore.directory / "index.json").read_text()
    assert "PRIVATE" not in index and '"d"' not in index
    assert all("d" not in jwk for jwk in keystore.jwks()["keys"])
    assert kid not in repr(keystore.current())  # repr shows the kid of the current key only
    assert "PRIVATE" not in repr(keystore.current())


def test_world_readable_private_key_is_refused(keystore: KeyStore, clock: FakeClock) -> None:
    kid = keystore.current().kid
    os.chmod(keystore.directory / f"{kid}.pem", 0o644)
    with pytest.raises(KeyStoreError, match="readable by others"):
        KeyStore(keystore.directory, clock=clock).current()


def test_an_index_entry_that_does_not_match_its_key_is_refused(keystore: KeyStore) -> None:
    keystore.current()
    index_path = keystore.directory / "index.json"
    doc = json.loads(index_path.read_text())
    doc["keys"][0]["kid"] = "../../etc/passwd-aaaaaaaaaaaa"
    index_path.write_text(json.dumps(doc))
    with pytest.raises(KeyStoreError, match="inconsistent"):
        keystore.verification_keys()


# -- revocation, lifetime, rollover window ------------------------------------------------------


def test_a_revoked_key_stops_verifying_at_once_through_a_warm_cache(
        keystore: KeyStore, verifier: JwksCache, clock: FakeClock, tmp_path: Path) -> None:
    token = mint(keystore, operator_id="alice", tier=Tier.BUILDER, issuer=ISS, audience=AUD)
    assert verify(token, verifier, issuer=ISS, audience=AUD).id == "alice"  # the cache holds the key
    kid = keystore.current().kid
    # Another process (its own KeyStore on the same directory) revokes; our clock has not moved.
    new_kid = KeyStore(tmp_path / "keys", clock=clock).revoke(kid)
    assert new_kid and new_kid != kid
    assert refused(token, verifier) == "unknown or retired signing key"
    assert kid not in {k["kid"] for k in keystore.jwks()["keys"]}
    assert not (tmp_path / "keys" / f"{kid}.pem").exists()
    fresh = mint(keystore, operator_id="alice", tier=Tier.BUILDER, issuer=ISS, audience=AUD)
    assert verify(fresh, verifier, issuer=ISS, audience=AUD).id == "alice"
    assert [e.kid for e in keystore.entries() if e.revoked_at is not None] == [kid]  # on record
    keystore.rotate()
    assert kid in {e.kid for e in keystore.entries()}  # a rotation keeps the record
    with pytest.raises(KeyError):
        keystore.revoke("no-such-key-0123456789")


def test_revoking_a_retired_key_cuts_its_rollover_short(keystore: KeyStore, verifier: JwksCache) -> None:
    old = mint(keystore, operator_id="alice", tier=Tier.BUILDER, issuer=ISS, audience=AUD)
    old_kid = keystore.current().kid
    current = keystore.rotate()
    assert verify(old, verifier, issuer=ISS, audience=AUD).id == "alice"  # inside the window
    assert keystore.revoke(old_kid) is None  # not the current key: no new key needed
    assert refused(old, verifier) == "unknown or retired signing key"
    assert keystore.current().kid == current


def test_a_key_holder_cannot_mint_a_token_longer_than_the_maximum(
        keystore: KeyStore, verifier: JwksCache, clock: FakeClock) -> None:
    key = keystore.current()
    century = jwt.encode(claims_for(clock, exp=int(clock()) + 100 * 365 * DAY), key.private_key,
                         algorithm="ES256", headers={"kid": key.kid})
    assert refused(century, verifier) == "token lifetime exceeds the maximum"
    month = jwt.encode(claims_for(clock, exp=int(clock()) + 30 * DAY), key.private_key,
                       algorithm="ES256", headers={"kid": key.kid})
    assert verify(month, verifier, issuer=ISS, audience=AUD).id == "bob"
    with pytest.raises(AuthError, match="lifetime"):
        verify(month, verifier, issuer=ISS, audience=AUD, max_ttl_s=7 * DAY)
    with pytest.raises(ValueError):
        mint(keystore, operator_id="bob", tier=Tier.BUILDER, issuer=ISS, audience=AUD, ttl_s=31 * DAY)


def test_the_rollover_window_is_configurable(tmp_path: Path, clock: FakeClock) -> None:
    keystore = KeyStore(tmp_path / "keys", clock=clock, rollover_s=60)
    verifier = JwksCache.for_keystore(keystore)
    token = mint(keystore, operator_id="alice", tier=Tier.BUILDER, issuer=ISS, audience=AUD)
    keystore.rotate()
    clock.advance(59)
    assert verify(token, verifier, issuer=ISS, audience=AUD).id == "alice"
    clock.advance(2)
    assert refused(token, verifier) == "unknown or retired signing key"
