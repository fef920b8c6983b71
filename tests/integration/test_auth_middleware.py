"""The auth layer inside a small FastAPI app: spoofed headers stripped, identity only from a
verified JWT, tiers and ownership enforced; once over real loopback HTTP against uvicorn,
with a key rotation done by a separate `python -m fleet_tui.commands.token` process."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from fleet_tui.api.auth import (
    StripSpoofedHeaders,
    ensure_all_allowed,
    ensure_owner,
    make_current_operator,
    require_tier,
    verify,
)
from fleet_tui.engine.kit.keys import JwksCache, KeyStore
from fleet_tui.engine.kit.tokens import mint
from fleet_tui.domain.models import Operator, Tier

ISS = "fleet-tui"
AUD = "fleet-tui"
TASK_OWNERS = {"t-bob": "bob", "t-carol": "carol"}
SPOOFED = {
    "x-fleet-operator-id": "root",
    "x-fleet-conviction-tier": "sovereign",
    "X-Fleet-Admin": "true",
    "x-conviction-tier": "sovereign",
    "x-wallet-address": "0xdeadbeef",
}


class ScopeHeaderRecorder:
    """Sits behind the stripper and records every header name it is handed."""

    def __init__(self, app: ASGIApp, seen: list[set[str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append({name.decode().lower() for name, _ in scope["headers"]})
        await self.app(scope, receive, send)


def build_app(keystore: KeyStore, verifier: JwksCache, seen: list[set[str]]) -> FastAPI:
    app = FastAPI()
    current_operator = make_current_operator(verifier, issuer=ISS, audience=AUD)
    builder = require_tier(Tier.BUILDER, current_operator, action="spawn")

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict:
        return keystore.jwks()

    @app.get("/whoami")
    async def whoami(request: Request, op: Operator = Depends(current_operator)) -> dict:
        x_headers = sorted(k for k in request.headers if k.startswith("x-"))
        return {"id": op.id, "tier": op.tier.value, "admin": op.is_admin, "x_headers": x_headers}

    @app.post("/spawn", status_code=201)
    async def spawn(op: Operator = Depends(builder)) -> dict:
        return {"spawned_by": op.id}

    @app.get("/status")
    async def fleet_status(all: bool = False, op: Operator = Depends(current_operator)) -> dict:
        ensure_all_allowed(op, all)
        return {"tasks": sorted(t for t, owner in TASK_OWNERS.items() if all or owner == op.id)}

    @app.get("/tasks/{task_id}")
    async def task(task_id: str, op: Operator = Depends(current_operator)) -> dict:
        owner = TASK_OWNERS.get(task_id)
        if owner is None:
            raise HTTPException(404, f"task {task_id} not found")
        ensure_owner(op, owner, task_id=task_id)
        return {"id": task_id, "owner": owner}

    app.add_middleware(ScopeHeaderRecorder, seen=seen)
    app.add_middleware(StripSpoofedHeaders)  # added last = outermost = runs first
    return app


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    store = KeyStore(tmp_path / "data" / "keys")
    store.current()
    return store


@pytest.fixture
def seen() -> list[set[str]]:
    return []


@pytest.fixture
async def client(keystore: KeyStore, seen: list[set[str]]) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(keystore, JwksCache.for_keystore(keystore), seen)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fleet.test") as c:
        yield c


def bearer(keystore: KeyStore, operator_id: str, tier: str, *, admin: bool = False,
           audience: str = AUD) -> dict[str, str]:
    token = mint(keystore, operator_id=operator_id, tier=tier, is_admin=admin,
                 issuer=ISS, audience=audience)
    return {"Authorization": f"Bearer {token}"}


async def test_spoofed_headers_alone_get_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, seen: list[set[str]]
) -> None:
    response = await client.post("/spawn", headers=SPOOFED)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not {k.lower() for k in SPOOFED} & seen[-1]


async def test_spoofed_headers_never_reach_the_app_and_do_not_change_identity(
    client: httpx.AsyncClient, keystore: KeyStore, seen: list[set[str]]
) -> None:
    headers = {**SPOOFED, **bearer(keystore, "bob", "observer"), "x-request-id": "r-1"}
    response = await client.get("/whoami", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"id": "bob", "tier": "observer", "admin": False,
                               "x_headers": ["x-request-id"]}  # unrelated x- headers pass
    assert not {k.lower() for k in SPOOFED} & seen[-1]
    assert "x-request-id" in seen[-1]
    spawn = await client.post("/spawn", headers=headers)
    assert spawn.status_code == 403


async def test_spawn_needs_builder_and_says_so(client: httpx.AsyncClient,
                                               keystore: KeyStore) -> None:
    observer = await client.post("/spawn", headers=bearer(keystore, "bob", "observer"))
    assert observer.status_code == 403
    assert observer.json()["detail"] == "spawn needs tier builder or above; operator bob is observer"
    participant = await client.post("/spawn", headers=bearer(keystore, "pat", "participant"))
    assert participant.status_code == 403
    for tier in ("builder", "sovereign"):
        ok = await client.post("/spawn", headers=bearer(keystore, "bob", tier))
        assert ok.status_code == 201 and ok.json() == {"spawned_by": "bob"}


async def test_observer_reads_only_its_own_status_and_all_needs_admin(
    client: httpx.AsyncClient, keystore: KeyStore
) -> None:
    own = await client.get("/status", headers=bearer(keystore, "bob", "observer"))
    assert own.status_code == 200 and own.json() == {"tasks": ["t-bob"]}
    everything = await client.get("/status?all=true", headers=bearer(keystore, "bob", "sovereign"))
    assert everything.status_code == 403
    assert "needs admin" in everything.json()["detail"]
    admin = await client.get("/status?all=true",
                             headers=bearer(keystore, "root", "observer", admin=True))
    assert admin.status_code == 200 and admin.json() == {"tasks": ["t-bob", "t-carol"]}


async def test_someone_elses_task_looks_missing_unless_admin(client: httpx.AsyncClient,
                                                            keystore: KeyStore) -> None:
    bob = bearer(keystore, "bob", "builder")
    assert (await client.get("/tasks/t-bob", headers=bob)).status_code == 200
    other = await client.get("/tasks/t-carol", headers=bob)
    missing = await client.get("/tasks/t-nobody", headers=bob)
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"] == "task t-carol not found"
    admin = await client.get("/tasks/t-carol", headers=bearer(keystore, "root", "builder",
                                                              admin=True))
    assert admin.status_code == 200 and admin.json()["owner"] == "carol"


@pytest.mark.parametrize("authorization", ["", "Basic Ym9iOnB3", "Bearer ", "Bearer not.a.jwt"])
async def test_missing_or_malformed_credentials_get_401(client: httpx.AsyncClient,
                                                        authorization: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_refused_tokens_get_401_invalid_token(client: httpx.AsyncClient,
                                                    keystore: KeyStore) -> None:
    wrong_aud = bearer(keystore, "bob", "builder", audience="someone-else")
    response = await client.get("/whoami", headers=wrong_aud)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["detail"] == "invalid token: wrong audience"
    token = wrong_aud["Authorization"].split()[1]
    assert token.split(".")[1] not in response.text

    header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).decode().rstrip("=")
    unsigned = f"{header}.{token.split('.')[1]}."
    none_alg = await client.get("/whoami", headers={"Authorization": f"Bearer {unsigned}"})
    assert none_alg.status_code == 401
    assert none_alg.json()["detail"] == "invalid token: algorithm not allowed"


# -- real loopback HTTP -----------------------------------------------------------------------


def token_cli(data_dir: Path, *argv: str) -> str:
    """Runs the CLI as its own process, as an operator would from a shell."""
    env = {**os.environ, "FLEET_DATA_DIR": str(data_dir)}
    env.pop("FLEET_CONFIG_FILE", None)
    done = subprocess.run([sys.executable, "-m", "fleet_tui.commands.token", *argv], env=env,
                          cwd=data_dir, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


async def test_over_loopback_with_rotation_by_another_process(keystore: KeyStore,
                                                              seen: list[set[str]]) -> None:
    # miss_interval_s=0: this test is about picking up a rotation without restart, not about
    # the DoS bound on unknown kids (covered in tests/unit/test_jwt.py).
    verifier = JwksCache.for_keystore(keystore, miss_interval_s=0.0)
    app = build_app(keystore, verifier, seen)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off",
                                           log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.025)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        data_dir = keystore.directory.parent
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            old_token = token_cli(data_dir, "token", "mint", "--operator", "bob",
                                  "--tier", "builder")
            auth = {"Authorization": f"Bearer {old_token}"}
            who = await http.get("/whoami", headers={**auth, **SPOOFED})
            assert who.status_code == 200
            assert who.json()["id"] == "bob" and who.json()["tier"] == "builder"
            assert who.json()["x_headers"] == []

            document = (await http.get("/.well-known/jwks.json")).json()
            assert [k["kid"] for k in document["keys"]] == [keystore.current().kid]
            assert all(k["kty"] == "EC" and k["alg"] == "ES256" and "d" not in k
                       for k in document["keys"])
            # A client-side verifier built from the served document accepts the token.
            remote = JwksCache(lambda: document)
            assert verify(old_token, remote, issuer=ISS, audience=AUD).id == "bob"

            new_kid = token_cli(data_dir, "token", "rotate")
            minted = json.loads(token_cli(data_dir, "token", "mint", "--operator", "carol",
                                          "--tier", "architect", "--json"))
            assert minted["kid"] == new_kid
            new_auth = {"Authorization": f"Bearer {minted['token']}"}
            # The running server was not restarted: new kid learned, old key still honoured.
            assert (await http.post("/spawn", headers=new_auth)).json() == {"spawned_by": "carol"}
            assert (await http.post("/spawn", headers=auth)).status_code == 201
            rotated = (await http.get("/.well-known/jwks.json")).json()["keys"]
            assert {k["kid"] for k in rotated} == {who_kid(old_token), new_kid}
            assert [k for k in rotated if k["kid"] != new_kid][0]["exp"] > 0
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=10)


def who_kid(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
