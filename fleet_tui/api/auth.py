"""Identity for the headless API: ES256 tokens, spoofed-header stripping, tier and ownership.

Identity comes from a verified JWT only. Headers a caller can set (x-fleet-*, ...) are removed
from the ASGI scope before any route or middleware behind StripSpoofedHeaders can read them.
Install it last so it is the outermost layer: `app.add_middleware(StripSpoofedHeaders)`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from fleet_tui.engine.kit.keys import JwksCache
from fleet_tui.engine.kit.tokens import ALGORITHM, MAX_TTL_S
from fleet_tui.domain.errors import AuthError as AuthError  # in the error catalogue
from fleet_tui.domain.models import Operator, Tier

log = logging.getLogger(__name__)

REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "tier")
MAX_LEEWAY_S = 300.0  # clock skew we tolerate, and no more
MAX_TOKEN_LENGTH = 8192

STRIPPED_HEADER_PREFIXES = (b"x-fleet-",)
STRIPPED_HEADERS = frozenset(
    {b"x-conviction-tier", b"x-wallet-address", b"x-operator-id", b"x-operator-tier"}
)


# -- tokens (minted by engine/kit/tokens.py) ---------------------------------------------------

_PYJWT_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.DecodeError, "malformed token"),
)


def verify(
    token: str,
    verifier: JwksCache,
    *,
    issuer: str,
    audience: str,
    leeway_s: float = 30.0,
    max_ttl_s: float = MAX_TTL_S,
) -> Operator:
    """The Operator a token names, or AuthError. ES256 only; time checks use verifier.clock.
    A token whose lifetime (exp - iat) exceeds max_ttl_s is refused whoever signed it: a
    holder of a signing key cannot mint tokens that outlive the fleet's policy."""
    if not 0 <= leeway_s <= MAX_LEEWAY_S:
        raise ValueError(f"leeway_s must be between 0 and {MAX_LEEWAY_S}")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise AuthError("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("malformed token") from None
    # Checked before any key is chosen: the token's own alg never picks our algorithm.
    if header.get("alg") != ALGORITHM:
        raise AuthError("algorithm not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError("missing key id")
    public_key = verifier.key_for(kid)
    if public_key is None:
        raise AuthError("unknown or retired signing key")
    try:
        claims = jwt.decode(
            token,
            key=public_key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={
                "require": list(REQUIRED_CLAIMS),
                # Time claims are checked below against the injectable clock.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "strict_aud": True,
            },
        )
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"missing claim {exc.claim}") from None
    except jwt.PyJWTError as exc:
        reason = next((r for kind, r in _PYJWT_REASONS if isinstance(exc, kind)), "invalid token")
        raise AuthError(reason) from None
    _check_times(claims, verifier.clock(), leeway_s, max_ttl_s)
    return _operator_from(claims)


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AuthError(f"claim {name} must be a number")
    return float(value)


def _check_times(claims: dict[str, Any], now: float, leeway_s: float, max_ttl_s: float) -> None:
    if _number(claims, "exp") <= now - leeway_s:
        raise AuthError("token expired")
    if _number(claims, "exp") - _number(claims, "iat") > max_ttl_s:
        raise AuthError("token lifetime exceeds the maximum")
    if _number(claims, "iat") > now + leeway_s:
        raise AuthError("token not yet valid")
    if "nbf" in claims and _number(claims, "nbf") > now + leeway_s:
        raise AuthError("token not yet valid")


def _operator_from(claims: dict[str, Any]) -> Operator:
    try:
        tier = Tier(claims["tier"])
    except (ValueError, TypeError):
        raise AuthError("unknown tier") from None
    adm = claims.get("adm", False)
    if not isinstance(adm, bool):
        raise AuthError("claim adm must be a boolean")
    try:
        return Operator(id=claims["sub"], tier=tier, is_admin=adm)
    except ValidationError:
        raise AuthError("invalid subject") from None


# -- ASGI middleware ------------------------------------------------------------------------


def _is_spoofable(name: bytes) -> bool:
    lowered = name.lower()
    return lowered in STRIPPED_HEADERS or lowered.startswith(STRIPPED_HEADER_PREFIXES)


class StripSpoofedHeaders:
    """Pure ASGI middleware: drops identity-looking headers from the scope, so nothing behind
    it (other middleware, dependencies, routes) can be fooled by them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = scope.get("headers") or []
            kept = [(name, value) for name, value in headers if not _is_spoofable(name)]
            if len(kept) != len(headers):
                dropped = sorted({n.decode("latin-1").lower() for n, _ in headers if _is_spoofable(n)})
                log.debug("stripped caller-set identity headers: %s", ", ".join(dropped))
                scope = {**scope, "headers": kept}
        await self.app(scope, receive, send)


# -- FastAPI dependencies -------------------------------------------------------------------


def _unauthorized(reason: str | None) -> HTTPException:
    if reason is None:
        challenge = 'Bearer realm="fleet-tui"'
        detail = "authentication required: send Authorization: Bearer <token>"
    else:
        challenge = f'Bearer realm="fleet-tui", error="invalid_token", error_description="{reason}"'
        detail = f"invalid token: {reason}"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": challenge})


def make_current_operator(
    verifier: JwksCache,
    *,
    issuer: str,
    audience: str,
    leeway_s: float = 30.0,
    max_ttl_s: float = MAX_TTL_S,
) -> Callable[[Request], Awaitable[Operator]]:
    """A dependency resolving `Authorization: Bearer <jwt>` to an Operator, else 401."""

    async def current_operator(request: Request) -> Operator:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _unauthorized(None)
        try:
            operator = verify(credentials.strip(), verifier, issuer=issuer, audience=audience,
                              leeway_s=leeway_s, max_ttl_s=max_ttl_s)
        except AuthError as exc:
            log.info("refused token: %s", exc.reason)
            raise _unauthorized(exc.reason) from None
        request.state.operator = operator
        return operator

    return current_operator


def check_tier(operator: Operator, minimum: Tier, *, action: str) -> None:
    """403 naming the tier needed and the caller's tier when operator is below minimum."""
    if not operator.tier.at_least(minimum):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{action} needs tier {minimum.value} or above; "
            f"operator {operator.id} is {operator.tier.value}",
        )


def require_tier(
    minimum: Tier,
    current_operator: Callable[..., Awaitable[Operator]],
    *,
    action: str = "this action",
) -> Callable[..., Awaitable[Operator]]:
    """A dependency: the authenticated Operator, if its tier is at least minimum."""

    async def operator_with_tier(operator: Operator = Depends(current_operator)) -> Operator:
        check_tier(operator, minimum, action=action)
        return operator

    return operator_with_tier


def ensure_owner(operator: Operator, owner_id: str, *, task_id: str) -> None:
    """Admins act on every task; others only on their own. Someone else's task answers 404
    with the very message a missing task gets, so ids cannot be probed for existence."""
    if operator.is_admin or operator.id == owner_id:
        return
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")


def ensure_all_allowed(operator: Operator, all_tasks: bool) -> None:
    """`?all=true` (everyone's tasks) is for admins only."""
    if all_tasks and not operator.is_admin:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"?all=true needs admin; operator {operator.id} is not an admin",
        )

