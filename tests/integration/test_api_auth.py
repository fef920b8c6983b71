"""Identity on the real app: spoofed identity headers are ignored, forged or stale tokens are
refused (expired, wrong audience, unknown key, forged kid, alg=none, HS256 keyed with the
public key), and signed external events."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from fleet_tui.engine.kit.tokens import mint
from fleet_tui.engine.kit.keys import KeyStore
from fleet_tui.api.routes.public import MAX_EVENT_BYTES
from fleet_tui.domain import webhooks
from fleet_tui.domain.models import Tier
from fleet_tui.engine.kit.bus import Notice
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


def signed(body: bytes, secret: str = EVENTS_SECRET, *, msg_id: str | None = None) -> dict[str, str]:
    return webhooks.sign([secret], msg_id or f"msg_{time.time_ns()}", body, now=time.time())


def notices(events: Any) -> list[Notice]:
    """The Notices queued so far (monitor ticks share the bus)."""
    found = []
    while not events.empty():
        event = events.get_nowait()
        if isinstance(event, Notice):
            found.append(event)
    return found


async def test_signed_external_events_reach_the_bus(api: Api) -> None:
    events = api.conductor.bus.subscribe()
    body = json.dumps({"type": "ci.failed", "source": "github", "summary": "main is red",
                       "data": {"run": 7}}).encode()
    unsigned = await api.client.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401 and "webhook-id" in unsigned.json()["detail"]
    wrong = await api.client.post("/api/events", content=body, headers=signed(body, "not-the-secret"))
    assert wrong.status_code == 401 and "webhook-signature" in wrong.json()["detail"]
    good = await api.client.post("/api/events", content=body, headers=signed(body, msg_id="msg_ci_1"))
    assert good.status_code == 202 and good.json()["id"] == "msg_ci_1"  # the sender's id is the event id
    (notice,) = notices(events)
    assert notice.kind == "external.ci.failed"
    assert notice.message == "main is red" and notice.data["data"] == {"run": 7}
    assert notice.data["event_id"] == "msg_ci_1"

    bad = json.dumps({"type": "Has Spaces", "source": "x"}).encode()
    invalid = await api.client.post("/api/events", content=bad, headers=signed(bad))
    assert invalid.status_code == 400 and [e["field"] for e in invalid.json()["errors"]] == ["type"]
    huge = b"{" + b" " * MAX_EVENT_BYTES + b"}"
    too_big = await api.client.post("/api/events", content=huge, headers=signed(huge))
    assert too_big.status_code == 413
    assert notices(events) == []  # only the one good event got through

    api.app.state.settings = api.conductor.settings.model_copy(
        update={"api": api.conductor.settings.api.model_copy(update={"events_secret": []})})
    disabled = await api.client.post("/api/events", content=body, headers=signed(body))
    assert disabled.status_code == 503


async def test_event_data_never_overrides_the_validated_fields(api: Api, monkeypatch: Any) -> None:
    routed: list[dict[str, Any]] = []

    async def dispatch(event_type: str, context: dict[str, Any], **_: Any) -> None:
        routed.append(context)

    monkeypatch.setattr(api.conductor.router, "dispatch", dispatch)
    body = json.dumps({"type": "alert", "source": "pager", "task_id": "task_1", "summary": "disk full",
                       "data": {"event_id": "forged", "task_id": "someone_elses", "source": "admin",
                                "summary": "all clear", "severity": "high"}}).encode()
    response = await api.client.post("/api/events", content=body, headers=signed(body, msg_id="msg_alert_1"))
    assert response.status_code == 202
    for _ in range(50):
        if routed:
            break
        await asyncio.sleep(0.02)
    assert routed == [{"event_id": "msg_alert_1", "task_id": "task_1", "source": "pager",
                       "summary": "disk full", "severity": "high"}]
