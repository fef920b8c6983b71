"""Identity on the real app: spoofed identity headers are ignored, forged or stale tokens are
refused (expired, wrong audience, unknown key, forged kid, alg=none, HS256 keyed with the
public key), and signed external events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization

from fleet_tui.api.auth import mint
from fleet_tui.api.keys import KeyStore
from fleet_tui.api.routes.public import MAX_EVENT_BYTES, SIGNATURE_HEADER, sign_event
from fleet_tui.domain.models import Tier
from fleet_tui.engine.bus import Notice
from tests.integration.api_harness import EVENTS_SECRET, Api, api, new_operator  # noqa: F401 (fixture)

SPOOFED = {
    "x-fleet-operator-id": "root",
    "x-fleet-conviction-tier": "sovereign",
    "x-conviction-tier": "sovereign",
    "x-wallet-address": "0xdeadbeef",
    "X-Fleet-Admin": "true",
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(api: Api, sub: str = "mallory", tier: str = "sovereign") -> dict[str, object]:
    now = int(time.time())
    return {"sub": sub, "tier": tier, "adm": True, "iss": api.conductor.settings.api.issuer,
            "aud": api.conductor.settings.api.audience, "iat": now, "nbf": now, "exp": now + 600}


async def test_spoofed_identity_headers_change_nothing(api: Api) -> None:
    observer = new_operator(Tier.OBSERVER)
    config = await api.client.get("/api/fleet/config", headers={**api.auth(observer), **SPOOFED})
    assert config.status_code == 403
    status = await api.client.get("/api/fleet/status?all=true", headers={**api.auth(observer), **SPOOFED})
    assert status.status_code == 403
    mine = await api.client.get("/api/fleet/status", headers={**api.auth(observer), **SPOOFED})
    assert mine.json()["operator_id"] == observer.id and mine.json()["tier"] == "observer"
    spawn = await api.client.post("/api/fleet/spawn", json=api.spawn_body("x"), headers={**api.auth(observer), **SPOOFED})
    assert spawn.status_code == 403
    headers_only = await api.client.get("/api/fleet/status", headers=SPOOFED)
    assert headers_only.status_code == 401


async def test_bad_tokens_are_refused(api: Api, tmp_path: Path) -> None:
    op = new_operator(Tier.SOVEREIGN, admin=True)
    settings = api.conductor.settings.api
    key = api.keystore.current()
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    stranger_keys = KeyStore(tmp_path / "other-keys")
    stranger_key = stranger_keys.current()
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    hs_body = b64(json.dumps(claims(api)).encode())
    hs_sig = b64(hmac.new(public_pem, f"{hs_header}.{hs_body}".encode(), hashlib.sha256).digest())
    tokens = {
        "expired": mint(api.keystore, operator_id=op.id, tier=op.tier, is_admin=True, ttl_s=60,
                        issuer=settings.issuer, audience=settings.audience, clock=lambda: time.time() - 7200),
        "wrong audience": mint(api.keystore, operator_id=op.id, tier=op.tier, is_admin=True,
                               issuer=settings.issuer, audience="someone-else"),
        "unknown key": mint(stranger_keys, operator_id=op.id, tier=op.tier, is_admin=True,
                            issuer=settings.issuer, audience=settings.audience),
        "forged kid": jwt.encode(claims(api), stranger_key.private_key, algorithm="ES256",
                                 headers={"kid": key.kid}),
        "alg none": jwt.encode(claims(api), None, algorithm="none", headers={"kid": key.kid}),
        "hs256 with the public key": f"{hs_header}.{hs_body}.{hs_sig}",
        "garbage": "not.a.token",
    }
    reasons = {}
    for name, token in tokens.items():
        response = await api.client.get("/api/fleet/config", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        reasons[name] = response.json()["detail"]
        assert token not in response.text
    assert reasons["expired"] == "invalid token: token expired"
    assert reasons["wrong audience"] == "invalid token: wrong audience"
    assert reasons["forged kid"] == "invalid token: bad signature"
    assert reasons["alg none"] == reasons["hs256 with the public key"] == "invalid token: algorithm not allowed"
    good = await api.client.get("/api/fleet/config", headers=api.auth(op))
    assert good.status_code == 200


async def test_signed_external_events_reach_the_bus(api: Api) -> None:
    events = api.conductor.bus.subscribe()
    body = json.dumps({"type": "ci.failed", "source": "github", "summary": "main is red",
                       "data": {"run": 7}}).encode()
    unsigned = await api.client.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    wrong = await api.client.post("/api/events", content=body,
                                  headers={SIGNATURE_HEADER: sign_event("not-the-secret", body)})
    assert wrong.status_code == 401
    signed = await api.client.post("/api/events", content=body,
                                   headers={SIGNATURE_HEADER: sign_event(EVENTS_SECRET, body)})
    assert signed.status_code == 202
    notice = events.get_nowait()
    assert isinstance(notice, Notice) and notice.kind == "external.ci.failed"
    assert notice.message == "main is red" and notice.data["data"] == {"run": 7}
    assert notice.data["event_id"] == signed.json()["id"]

    bad = json.dumps({"type": "Has Spaces", "source": "x"}).encode()
    invalid = await api.client.post("/api/events", content=bad, headers={SIGNATURE_HEADER: sign_event(EVENTS_SECRET, bad)})
    assert invalid.status_code == 400 and [e["field"] for e in invalid.json()["errors"]] == ["type"]
    huge = b"{" + b" " * MAX_EVENT_BYTES + b"}"
    too_big = await api.client.post("/api/events", content=huge, headers={SIGNATURE_HEADER: sign_event(EVENTS_SECRET, huge)})
    assert too_big.status_code == 413
    assert events.empty()  # only the one good event got through

    api.app.state.settings = api.conductor.settings.model_copy(
        update={"api": api.conductor.settings.api.model_copy(update={"events_secret": None})})
    disabled = await api.client.post("/api/events", content=body,
                                     headers={SIGNATURE_HEADER: sign_event(EVENTS_SECRET, body)})
    assert disabled.status_code == 503
