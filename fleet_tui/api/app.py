"""create_app: the headless HTTP face over one fleet (a FleetFace) and its ApiSupport.

Layers, outermost first: StripSpoofedHeaders (identity-looking headers never reach
anything), RequestTrace (trace id + access log), FastAPI (routes, error handlers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI

from fleet_tui.api.auth import StripSpoofedHeaders, make_current_operator
from fleet_tui.api.errors import install_error_handlers, install_openapi
from fleet_tui.engine.kit.keys import JwksCache, KeyStore
from fleet_tui.api.middleware import InFlight, RequestTrace
from fleet_tui.api.routes import fleet, public, tasks
from fleet_tui.config import Settings
from fleet_tui.engine.api_support import ApiSupport
from fleet_tui.engine.ports import FleetFace

TITLE = "fleet-tui headless API"
VERSION = "1"


def create_app(
    conductor: FleetFace,
    *,
    keystore: KeyStore,
    support: Callable[[], ApiSupport] | None = None,
    verifier: JwksCache | None = None,
    settings: Settings | None = None,
    stopping: asyncio.Event | None = None,
) -> FastAPI:
    """`support` makes what the headless-only routes need beyond the fleet (metrics, test
    notifications, external events, the database probe: session.api_support_for), on their
    first use; without it those routes answer 500. `stopping` is set when the server starts
    draining: health answers 503 and log streams end, so in-flight requests can finish
    without holding the shutdown."""
    settings = settings or conductor.settings
    verifier = verifier or JwksCache.for_keystore(keystore)
    app = FastAPI(title=TITLE, version=VERSION, docs_url=None, redoc_url=None,
                  description="Operate a fleet of AI coding agents. Bearer tokens are ES256 JWTs "
                              "(`fleet-tui token mint`); keys at /.well-known/jwks.json.")
    app.state.conductor = conductor
    app.state.make_support = support
    app.state.support = None  # deps.support_of makes it on first use
    app.state.settings = settings
    app.state.keystore = keystore
    app.state.stopping = stopping or asyncio.Event()
    app.state.in_flight = InFlight()
    app.state.authenticate = make_current_operator(
        verifier, issuer=settings.api.issuer, audience=settings.api.audience,
        max_ttl_s=settings.api.max_token_ttl_s)
    for module in (fleet, tasks, public):
        app.include_router(module.router)
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(RequestTrace, in_flight=app.state.in_flight)
    app.add_middleware(StripSpoofedHeaders)  # added last = outermost = runs first
    return app
