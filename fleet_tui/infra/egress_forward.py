"""Inside an agent's container: the only way out, loopback listeners forwarded to a unix socket.

The container has no network but loopback (network "none"). For each endpoint the agent
may reach, the launcher binds ``127.0.0.N:PORT`` (the endpoint's host name maps to that
address in the container's /etc/hosts) and forwards each connection to the conductor's
allow-list proxy through the bound unix socket, asking ``CONNECT host:port``: the proxy
(infra/egress.py) checks the pair against the task's allow-list and connects. TLS runs end to
end between the agent and the endpoint, so certificates and SNI are the real ones.

Standard library only: the launcher loads this file by path under ``python -I -S``.
"""

from __future__ import annotations

import socket
import threading

HEAD_LIMIT = 4096
CHUNK = 65536


def bind(forwards: list[list[str | int]]) -> list[tuple[socket.socket, str]]:
    """Listening sockets for [listen_host, listen_port, "host:port"] entries, bound before
    the agent starts so that its first connection finds them."""
    listeners = []
    for listen_host, listen_port, target in forwards:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((listen_host, int(listen_port)))
        server.listen(64)
        listeners.append((server, str(target)))
    return listeners


def serve(listeners: list[tuple[socket.socket, str]], socket_path: str) -> None:
    """Accept on every listener in daemon threads (they end with the launcher)."""
    for server, target in listeners:
        threading.Thread(target=_accept, args=(server, target, socket_path), daemon=True).start()


def _accept(server: socket.socket, target: str, socket_path: str) -> None:
    while True:
        try:
            client, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=_forward, args=(client, target, socket_path), daemon=True).start()


def _forward(client: socket.socket, target: str, socket_path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(socket_path)
        upstream.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
            data = upstream.recv(HEAD_LIMIT)
            if not data:
                break
            head += data
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"200":
            return  # refused: the agent sees its connection closed
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            client.sendall(rest)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
    except OSError:
        pass
    finally:
        client.close()
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
