"""Egress for containers: the model endpoints an agent needs, and nothing else.

The engine runs without iptables or a bridge (dockerd --iptables=false --bridge=none), so
no docker network can be trusted to stop a container reaching the host's services. The
container keeps network "none" (loopback only) and gets, per task:

- an allow-list proxy run by the conductor (``EgressProxy``) on a unix socket in a fresh
  0755 dir bound read-only at /run/fleet-egress: it answers only ``CONNECT host:port`` for
  the task's endpoints, connects to them from the host, and pipes bytes; anything else is
  refused with 403 and logged (host and port only);
- loopback listeners inside the container (infra/egress_forward.py, started by the
  launcher) at 127.0.0.N:PORT, with each endpoint's host name mapped to its 127.0.0.N in the
  container's /etc/hosts: the CLI connects to its usual URL, unchanged, and TLS runs end to
  end.

The endpoints are the profile's ``egress`` (api.anthropic.com:443, ...), or, when the
agent's environment names a base URL (ANTHROPIC_BASE_URL, OPENAI_BASE_URL, ...), that URL's
host and port instead. Nothing else resolves (no DNS), and no other address is routed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SOCKET_DIR_IN_CONTAINER = "/run/fleet-egress"
SOCKET_NAME = "egress.sock"
BASE_URL_SUFFIXES = ("_BASE_URL", "_API_BASE")
FIRST_ALIAS = 10  # 127.0.0.10, .11, ... for named hosts (127.0.0.1 stays the container's own)
HEAD_LIMIT = 4096
CONNECT_TIMEOUT_S = 15.0
HEAD_TIMEOUT_S = 10.0
CHUNK = 65536


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Forward:
    """One listener inside the container and the endpoint it stands for."""

    listen_host: str
    endpoint: Endpoint


def parse_endpoint(text: str) -> Endpoint:
    host, _, port = text.rpartition(":")
    return Endpoint(host.lower(), int(port))


def endpoints_for(profile_egress: Iterable[str], env: Mapping[str, str]) -> list[Endpoint]:
    """A base URL in the agent's environment replaces the profile's default endpoints."""
    chosen: list[Endpoint] = []
    for name, value in sorted(env.items()):
        if not name.endswith(BASE_URL_SUFFIXES) or not value:
            continue
        url = urlsplit(value)
        if url.hostname and url.scheme in ("http", "https"):
            endpoint = Endpoint(url.hostname.lower(), url.port or (443 if url.scheme == "https" else 80))
            if endpoint not in chosen:
                chosen.append(endpoint)
    return chosen or [parse_endpoint(e) for e in profile_egress]


def forwards_for(endpoints: Iterable[Endpoint]) -> tuple[list[Forward], dict[str, str]]:
    """Listeners and the /etc/hosts entries that send each host name to its listener.
    A loopback address stays itself (the base URL then works unchanged inside)."""
    forwards: list[Forward] = []
    hosts: dict[str, str] = {}
    for endpoint in endpoints:
        listen = _loopback(endpoint.host)
        if listen is None:
            listen = hosts.get(endpoint.host) or f"127.0.0.{FIRST_ALIAS + len(hosts)}"
            hosts[endpoint.host] = listen
        forwards.append(Forward(listen, endpoint))
    return forwards, hosts


def _loopback(host: str) -> str | None:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(address) if address.version == 4 and address.is_loopback else None


class ProxyInUse(OSError):
    """Another live conductor serves this socket: it is left alone."""


class EgressProxy:
    """The conductor's allow-list CONNECT proxy for one task, on a unix socket."""

    def __init__(self, task_id: str, endpoints: Iterable[Endpoint], directory: Path | None = None) -> None:
        """directory: a running container's socket dir, when a restarted conductor takes
        its egress over (the container keeps the bind it was created with)."""
        self.task_id = task_id
        self.allowed_in_order = tuple(dict.fromkeys(endpoints))
        self.allowed = frozenset(self.allowed_in_order)
        self.dir = directory or Path(tempfile.mkdtemp(prefix="fleet-egress-"))  # short: sun_path is 108 bytes
        self.path = self.dir / SOCKET_NAME
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.path.exists():  # a socket left by a conductor that stopped, or one serving still
            try:
                _, writer = await asyncio.open_unix_connection(str(self.path))
            except OSError:
                self.path.unlink(missing_ok=True)
            else:
                writer.close()
                raise ProxyInUse(f"{self.path} is served by another conductor")
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.dir, 0o755)  # the container's user must reach the socket ...
        os.chmod(self.path, 0o666)  # ... and connect to it; all it offers is the allow-list

    async def close(self, *, keep_dir: bool = False) -> None:
        """Stop serving; keep_dir when the container lives on (a conductor's shutdown): the
        next conductor serves the same socket dir again."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            endpoint = await self._requested(reader)
            if endpoint is None or endpoint not in self.allowed:
                log.warning("egress refused for task %s: %s", self.task_id, endpoint or "a malformed request")
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(endpoint.host, endpoint.port), CONNECT_TIMEOUT_S)
            except (TimeoutError, OSError) as exc:
                log.warning("egress to %s for task %s failed: %s", endpoint, self.task_id, exc)
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    @staticmethod
    async def _requested(reader: asyncio.StreamReader) -> Endpoint | None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        if len(head) > HEAD_LIMIT:
            return None
        parts = head.split(b"\r\n", 1)[0].decode("ascii", errors="replace").split()
        if len(parts) != 3 or parts[0] != "CONNECT" or not parts[2].startswith("HTTP/1."):
            return None
        host, sep, port = parts[1].rpartition(":")
        if not sep or not port.isdigit():
            return None
        return Endpoint(host.lower(), int(port))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        pass
