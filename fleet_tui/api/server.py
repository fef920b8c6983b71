"""The HTTP API served by uvicorn inside the conductor's own event loop.

uvicorn must not own signals here: the headless session handles SIGTERM/SIGINT itself and
then asks the server to drain (should_exit: stop accepting, let in-flight requests finish
within the grace period), before the conductor's loops stop. Agents are never touched."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from fleet_tui.api.app import create_app
from fleet_tui.api.token_cli import keystore_for
from fleet_tui.domain.errors import ConfigError
from fleet_tui.engine.conductor import Conductor

log = logging.getLogger(__name__)

GRACE_S = 30


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"api.listen: expected HOST:PORT, got {listen!r}")
    return host, int(port)


def bind(host: str, port: int) -> socket.socket:
    """Bind before serving so that a busy port is one clear error, not uvicorn's sys.exit."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"api.listen: cannot resolve {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"api.listen: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _LoopServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the session owns SIGTERM/SIGINT


class ApiServer:
    """`await s.start()`, then `s.url`; `await s.drain()` finishes in-flight requests."""

    def __init__(self, app: FastAPI, listen: str, *, grace_s: float = GRACE_S) -> None:
        self.app = app
        self.host, self.port = parse_listen(listen)
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                timeout_graceful_shutdown=int(grace_s), server_header=False,
                                proxy_headers=False)
        self._server = _LoopServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]  # port 0 picks a free one
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="fleet-api")
        while not self._server.started:
            if self._task.done():
                await self._task  # startup failed: raise its error
                raise ConfigError("the API server stopped during startup")
            await asyncio.sleep(0.01)
        log.info("api listening on %s", self.url, extra={"url": self.url})

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def drain(self) -> None:
        """Stop accepting connections; wait for in-flight requests (up to the grace)."""
        if self._task is None:
            return
        in_flight = self.app.state.in_flight.count
        log.info("api draining: %d request(s) in flight", in_flight, extra={"in_flight": in_flight})
        self.app.state.stopping.set()
        self._server.should_exit = True
        await self._task


async def serve_api(conductor: Conductor, stop: asyncio.Event) -> None:
    """The headless session's face: the API until `stop` is set, then a graceful drain."""
    settings = conductor.settings
    keystore = keystore_for(settings)
    await asyncio.to_thread(keystore.current)  # a signing key exists before the first request
    app = create_app(conductor, keystore=keystore, settings=settings)
    server = ApiServer(app, settings.api.listen)
    await server.start()
    stop_wait = asyncio.ensure_future(stop.wait())
    server_wait = asyncio.ensure_future(server.wait())
    try:
        await asyncio.wait({stop_wait, server_wait}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_wait.cancel()
    if server.done:
        await server_wait  # the server ended by itself: surface why
        return
    await server.drain()
