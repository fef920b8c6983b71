"""API tokens: ES256 JWTs signed with the install's keys (engine/kit/keys.py), minted here
for the `token` verb and the tests; the HTTP face verifies them (api/auth.py). One place for
both faces: the api and the commands may not import each other."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import jwt

from fleet_tui.config import Settings
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.kit.keys import KeyStore

ALGORITHM = "ES256"
MAX_TTL_S = 30 * 24 * 3600  # the default api.max_token_ttl_s


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


def keystore_for(settings: Settings) -> KeyStore:
    """The install's signing keys with its configured rollover window."""
    return KeyStore(keys_dir(settings), rollover_s=settings.api.key_rollover_s)


def mint(
    keystore: KeyStore,
    *,
    operator_id: str,
    tier: Tier | str,
    is_admin: bool = False,
    ttl_s: int = 3600,
    issuer: str,
    audience: str,
    clock: Callable[[], float] | None = None,
    max_ttl_s: float = MAX_TTL_S,
) -> str:
    """Sign a token for operator_id with the keystore's current key."""
    if not 0 < ttl_s <= max_ttl_s:
        raise ValueError(f"ttl_s must be between 1 and {max_ttl_s:g}")
    operator = Operator(id=operator_id, tier=Tier(tier), is_admin=is_admin)  # validates id
    now = int((clock or keystore.clock)())
    key = keystore.current()
    claims = {
        "sub": operator.id,
        "tier": operator.tier.value,
        "adm": operator.is_admin,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl_s),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

