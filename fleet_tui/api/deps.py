"""FastAPI dependencies: the fleet and the verified operator, from app.state. Routes see the
fleet as a FleetFace (the operator's actions and reads); the headless-only routes that need
more of the engine (metrics, test notification, reputation, health's database probe,
external events) take its ApiSupport, which the composition root builds from the conductor.

The operator comes only from the bearer token (auth.make_current_operator); it is what
every conductor call receives, and the store sets the tenant context from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fleet_tui.api.auth import check_tier
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.api_support import ApiSupport
from fleet_tui.engine.ports import FleetFace

# Declares the bearer scheme in the OpenAPI document; the token is verified below.
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT (ES256)")


def fleet_of(request: Request) -> FleetFace:
    fleet: FleetFace = request.app.state.conductor
    return fleet


def support_of(request: Request) -> ApiSupport:
    """Made on first use: an app over a fleet without a database (the tests' seeded one)
    answers every other route."""
    support: ApiSupport | None = request.app.state.support
    if support is None:
        make: Callable[[], ApiSupport] | None = request.app.state.make_support
        if make is None:
            raise RuntimeError("this app was made without the engine's ApiSupport (create_app's support)")
        support = request.app.state.support = make()
    return support


async def current_operator(
    request: Request,
    _: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
) -> Operator:
    operator: Operator = await request.app.state.authenticate(request)
    return operator


def tier_at_least(minimum: Tier, action: str) -> Callable[..., Awaitable[Operator]]:
    """A dependency: the verified operator, if its tier is at least minimum (else 403
    naming the action, the tier needed and the caller's tier)."""

    async def operator_with_tier(operator: Operator = Depends(current_operator)) -> Operator:
        check_tier(operator, minimum, action=action)
        return operator

    return operator_with_tier


def builder(action: str) -> Callable[..., Awaitable[Operator]]:
    """`Annotated[Operator, Depends(builder("spawn"))]` in a route signature: writes need
    tier builder or above."""
    return tier_at_least(Tier.BUILDER, action)


FleetDep = Annotated[FleetFace, Depends(fleet_of)]
SupportDep = Annotated[ApiSupport, Depends(support_of)]
OperatorDep = Annotated[Operator, Depends(current_operator)]
SovereignDep = Annotated[Operator, Depends(tier_at_least(Tier.SOVEREIGN, "reading the configuration"))]
