"""The HTTP API served by uvicorn inside the conductor's own event loop.

uvicorn must not own signals here: the headless session handles SIGTERM/SIGINT itself and
then asks the server to drain (should_exit: stop accepting, let in-flight requests finish
within the grace period), before the conductor's loops stop. Agents are never touched."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import sys
import termios
import time
from collections.abc import Iterator
from typing import Any

from fleet_tui.extras import require

require("server")  # without fastapi/uvicorn: one line naming the extra, not a traceback

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from fleet_tui.api.app import create_app  # noqa: E402
from fleet_tui.engine.kit.tokens import keystore_for  # noqa: E402
from fleet_tui.domain.errors import ConfigError  # noqa: E402
from fleet_tui.engine.conductor import Conductor  # noqa: E402
from fleet_tui.engine.session import api_support_for  # noqa: E402

log = logging.getLogger(__name__)

GRACE_S = 30  # the API server's own default; the headless face passes api.drain_grace_s
FIRST_REQUEST_WAIT_S = 2.0  # on drain, how long an accepted connection may take to send its request


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
    """uvicorn's server with a shutdown that drops nothing already received: connections
    waiting in the listen backlog are accepted first, and a connection is closed only once
    it is idle (no request being answered, no request bytes buffered or unread, and for a
    connection still waiting for its first request, FIRST_REQUEST_WAIT_S passed); one with
    a response under way closes after it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the session owns SIGTERM/SIGINT

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        grace = float(self.config.timeout_graceful_shutdown or 0)
        deadline = time.monotonic() + grace
        listeners = [s for server in self.servers for s in server.sockets] + list(sockets or [])
        while any(accept_backlog(s) for s in listeners) and time.monotonic() < min(deadline, time.monotonic() + 2):
            await asyncio.sleep(0.005)  # the loop accepts them meanwhile
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        # A connection that never carried a request was opened to send one: it gets a moment
        # to arrive (the client may be just behind the signal); one that carried requests and
        # waits idle is closed now (a client reusing it must be ready for that: keep-alive).
        first_request_by = min(deadline, time.monotonic() + FIRST_REQUEST_WAIT_S)
        while self.server_state.connections and time.monotonic() < deadline and not self.force_exit:
            for connection in list(self.server_state.connections):
                cycle = getattr(connection, "cycle", None)  # None until a request came (or not h11/httptools)
                if is_idle(connection) and (cycle is not None or time.monotonic() >= first_request_by):
                    connection.shutdown()
                elif cycle is not None:
                    cycle.keep_alive = False  # answer it, then close
            await asyncio.sleep(0.01)
        remaining = deadline - time.monotonic()
        if self.server_state.tasks and remaining > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    while self.server_state.tasks and not self.force_exit:
                        await asyncio.sleep(0.01)
        for task in self.server_state.tasks:
            task.cancel(msg="the drain grace is over")
        if self.server_state.tasks:
            log.error("api drain: %d request(s) cut off at the end of the %.0fs grace",
                      len(self.server_state.tasks), grace)
        for connection in list(self.server_state.connections):
            connection.shutdown()


def accept_backlog(sock: Any) -> int:
    """Connections the kernel completed on a listening socket that nobody accepted yet
    (Linux: tcpi_unacked of a LISTEN socket is its accept queue length); 0 elsewhere."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
    except (OSError, AttributeError):
        return 0
    return struct.unpack_from("I", info, 24)[0] if len(info) >= 28 else 0


def is_idle(connection: Any) -> bool:
    """A uvicorn h11 connection with no request in hand, none half-read and none unread."""
    cycle = getattr(connection, "cycle", None)
    if cycle is not None and not cycle.response_complete:
        return False
    parser = getattr(connection, "conn", None)
    if parser is not None and getattr(parser, "trailing_data", (b"",))[0]:
        return False
    transport = getattr(connection, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return True
    buffered = bytearray(4)
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, buffered)
    except OSError:
        return True
    return int.from_bytes(buffered, sys.byteorder) == 0


class ApiServer:
    """`await s.start()`, then `s.url`; `await s.drain()` finishes in-flight requests."""

    def __init__(self, app: FastAPI, listen: str, *, grace_s: float = GRACE_S) -> None:
        self.app = app
        self.host, self.port = parse_listen(listen)
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                timeout_graceful_shutdown=max(int(grace_s), 1), server_header=False,
                                proxy_headers=False, http="h11")
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
        connections = len(self._server.server_state.connections)
        log.info("api draining: %d request(s) in flight, %d connection(s) open", in_flight, connections,
                 extra={"in_flight": in_flight, "connections": connections})
        self.app.state.stopping.set()
        self._server.should_exit = True
        await self._task


async def serve_api(conductor: Conductor, stop: asyncio.Event) -> None:
    """The headless session's face: the API until `stop` is set, then a graceful drain."""
    settings = conductor.settings
    keystore = keystore_for(settings)
    await asyncio.to_thread(keystore.current)  # a signing key exists before the first request
    app = create_app(conductor, keystore=keystore, support=lambda: api_support_for(conductor),
                     settings=settings)
    server = ApiServer(app, settings.api.listen, grace_s=settings.api.drain_grace_s or GRACE_S)
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
