"""ES256 signing keys on disk, rotation with a rollover window, and a JWKS cache for verifiers.

Layout of the key directory (mode 0700):
    index.json      {"keys": [{kid, created_at, retired_at, revoked_at, x, y}, ...]}  (public parts only)
    <kid>.pem       PKCS#8 private key, mode 0600
    .lock           fcntl lock taken by whoever creates or rotates keys

Files live here rather than in the database: the `token` verb mints without a database, and
the HTTP face, which verifies, may not import store. Readers never
lock: the index is replaced atomically and a key's PEM is written before the index names it.
Every conductor sharing the directory sees a change (rotation, revocation) on its next
verification: the JWKS cache reloads whenever the index file changes (one stat per check).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleet_tui.domain.errors import KeyStoreError as KeyStoreError  # in the error catalogue

log = logging.getLogger(__name__)

DEFAULT_ROLLOVER_S = 24 * 3600
JWKS_TTL_S = 300.0
# An unknown kid forces a reload at most this often, so random kids cannot hammer the disk.
MISS_RELOAD_INTERVAL_S = 5.0
INDEX_NAME = "index.json"
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:  # keep private keys out of logs and tracebacks
        return f"SigningKey(kid={self.kid!r})"


@dataclass(frozen=True)
class KeyEntry:
    kid: str
    created_at: float
    retired_at: float | None
    x: str
    y: str
    revoked_at: float | None = None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_xy(public_key: ec.EllipticCurvePublicKey) -> tuple[str, str]:
    numbers = public_key.public_numbers()
    return _b64url(numbers.x.to_bytes(32, "big")), _b64url(numbers.y.to_bytes(32, "big"))


def thumbprint(x: str, y: str) -> str:
    """RFC 7638 JWK thumbprint: a kid that names the key itself."""
    canonical = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(x: str, y: str, kid: str) -> dict[str, Any]:
    return {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"}


class KeyStore:
    """File-backed ES256 keys. Safe across processes: a rotation by `fleet-tui token rotate`
    is seen by a running server on its next index read (see JwksCache)."""

    def __init__(
        self,
        directory: Path,
        *,
        rollover_s: float = DEFAULT_ROLLOVER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rollover_s < 0:
            raise ValueError("rollover_s must be >= 0")
        self.directory = Path(directory)
        self.rollover_s = rollover_s
        self.clock = clock
        self._private_cache: dict[str, ec.EllipticCurvePrivateKey] = {}

    # -- public API -------------------------------------------------------------------------

    def current(self) -> SigningKey:
        """The key new tokens are signed with; created on first use."""
        entry = self._current_entry(self._read_index())
        if entry is None:
            with self._locked():
                entries = self._read_index()
                entry = self._current_entry(entries)
                if entry is None:
                    entry = self._create_key()
                    self._write_index([*entries, entry])
                    log.info("created signing key %s", entry.kid)
        return SigningKey(entry.kid, self._load_private(entry.kid))

    def rotate(self) -> str:
        """Make a new signing key; the previous one keeps verifying for rollover_s.
        Returns the new kid."""
        with self._locked():
            now = self.clock()
            entries = []
            for entry in self._read_index():
                if entry.retired_at is None:
                    entry = KeyEntry(entry.kid, entry.created_at, now, entry.x, entry.y)
                entries.append(entry)
            new = self._create_key()
            kept = [e for e in entries if self._still_verifies(e, now) or e.revoked_at is not None]
            self._write_index([*kept, new])
            # Index first, files after: a reader never sees an index naming a missing file.
            for gone in (e for e in entries if e not in kept):
                (self.directory / f"{gone.kid}.pem").unlink(missing_ok=True)
                self._private_cache.pop(gone.kid, None)
            log.info("rotated signing key: new %s, %d retired kept", new.kid, len(kept))
            return new.kid

    def revoke(self, kid: str) -> str | None:
        """Stop kid verifying at once, in every process that shares this directory. Revoking
        the current key makes a new one first (the new kid is returned, else None). Its
        private key is deleted; the entry stays, marked, so the revocation is on record.
        KeyError when no key has that kid."""
        with self._locked():
            now = self.clock()
            entries = self._read_index()
            target = next((e for e in entries if e.kid == kid), None)
            if target is None:
                raise KeyError(kid)
            new = self._create_key() if target.retired_at is None and target.revoked_at is None else None
            entries = [replace(e, retired_at=e.retired_at or now, revoked_at=e.revoked_at or now)
                       if e.kid == kid else e for e in entries]
            self._write_index([*entries, *([new] if new else [])])
            (self.directory / f"{kid}.pem").unlink(missing_ok=True)
            self._private_cache.pop(kid, None)
            log.info("revoked signing key %s%s", kid, f"; new signing key {new.kid}" if new else "")
            return new.kid if new else None

    def entries(self) -> list[KeyEntry]:
        """Every key on record, revoked ones included (for `fleet-tui token list`)."""
        return self._read_index()

    def index_version(self) -> tuple[int, int, int] | None:
        """Changes whenever the index is rewritten (it is replaced by rename: a new inode)."""
        try:
            st = (self.directory / INDEX_NAME).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def verification_keys(self) -> list[KeyEntry]:
        """The current key plus retired keys still inside their rollover window."""
        now = self.clock()
        return [e for e in self._read_index() if self._still_verifies(e, now)]

    def jwks(self) -> dict[str, Any]:
        """Public JWKS document. Retired keys carry `exp` (unix seconds) when they stop
        verifying, so a cache holding the document never honours them past the window."""
        keys = []
        for entry in self.verification_keys():
            jwk = public_jwk(entry.x, entry.y, entry.kid)
            if entry.retired_at is not None:
                jwk["exp"] = int(entry.retired_at + self.rollover_s)
            keys.append(jwk)
        return {"keys": keys}

    # -- internals --------------------------------------------------------------------------

    def _still_verifies(self, entry: KeyEntry, now: float) -> bool:
        if entry.revoked_at is not None:
            return False
        return entry.retired_at is None or entry.retired_at + self.rollover_s > now

    @staticmethod
    def _current_entry(entries: list[KeyEntry]) -> KeyEntry | None:
        live = [e for e in entries if e.retired_at is None and e.revoked_at is None]
        return max(live, key=lambda e: e.created_at) if live else None

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.directory.stat().st_mode)
        if mode & 0o077:
            os.chmod(self.directory, 0o700)  # we own it; tighten rather than leak

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_directory()
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read_index(self) -> list[KeyEntry]:
        path = self.directory / INDEX_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            entries = [
                KeyEntry(
                    kid=str(item["kid"]),
                    created_at=float(item["created_at"]),
                    retired_at=None if item.get("retired_at") is None else float(item["retired_at"]),
                    x=str(item["x"]),
                    y=str(item["y"]),
                    revoked_at=None if item.get("revoked_at") is None else float(item["revoked_at"]),
                )
                for item in raw["keys"]
            ]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"key index {path} is unreadable ({type(exc).__name__})") from None
        for entry in entries:
            # The kid becomes a file name and must name this very key.
            if not _KID_RE.match(entry.kid) or thumbprint(entry.x, entry.y) != entry.kid:
                raise KeyStoreError(f"key index {path} holds an inconsistent entry")
        return entries

    def _write_index(self, entries: list[KeyEntry]) -> None:
        doc = {
            "keys": [
                {"kid": e.kid, "created_at": e.created_at, "retired_at": e.retired_at,
                 "revoked_at": e.revoked_at, "x": e.x, "y": e.y}
                for e in entries
            ]
        }
        _atomic_write(self.directory / INDEX_NAME, json.dumps(doc, indent=2).encode("utf-8"))

    def _create_key(self) -> KeyEntry:
        # a kid (the key's thumbprint) starting with "-" would read as an option in
        # `fleet-tui token revoke KID`: about 1 key in 64 is drawn again
        while True:
            private_key = ec.generate_private_key(ec.SECP256R1())
            x, y = _public_xy(private_key.public_key())
            kid = thumbprint(x, y)
            if not kid.startswith("-"):
                break
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _atomic_write(self.directory / f"{kid}.pem", pem)
        self._private_cache[kid] = private_key
        return KeyEntry(kid=kid, created_at=self.clock(), retired_at=None, x=x, y=y)

    def _load_private(self, kid: str) -> ec.EllipticCurvePrivateKey:
        cached = self._private_cache.get(kid)
        if cached is not None:
            return cached
        path = self.directory / f"{kid}.pem"
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise KeyStoreError(f"private key {path} is readable by others "
                                    f"(mode {mode:o}); chmod 600 it")
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise KeyStoreError(f"private key {path} is missing") from None
        except ValueError:
            raise KeyStoreError(f"private key {path} is not a valid PEM key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise KeyStoreError(f"private key {path} is not an EC P-256 key")
        self._private_cache[kid] = key
        return key


def _atomic_write(path: Path, data: bytes) -> None:
    """Temp file (mkstemp: mode 0600) + fsync + rename, then fsync the directory."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class _CachedKey:
    public_key: ec.EllipticCurvePublicKey
    expires_at: float | None


class JwksCache:
    """Verification keys from a JWKS document, reloaded at most every ttl_s, or sooner when
    a token names a kid we do not know (at most every miss_interval_s). `source` returns the
    document: KeyStore.jwks for the local install, or a fetch of a remote jwks.json."""

    def __init__(
        self,
        source: Callable[[], Mapping[str, Any]],
        *,
        ttl_s: float = JWKS_TTL_S,
        miss_interval_s: float = MISS_RELOAD_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        version: Callable[[], object] | None = None,
    ) -> None:
        self._source = source
        # A cheap probe of the source (the index file's identity): a change reloads at once,
        # so a revocation never waits out ttl_s.
        self._version = version
        self._seen_version: object = None
        self.ttl_s = ttl_s
        self.miss_interval_s = miss_interval_s
        self.clock = clock
        self._keys: dict[str, _CachedKey] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()
        self.reloads = 0  # observable for tests and metrics

    @classmethod
    def for_keystore(cls, keystore: KeyStore, **kwargs: Any) -> JwksCache:
        kwargs.setdefault("clock", keystore.clock)
        kwargs.setdefault("version", keystore.index_version)
        return cls(keystore.jwks, **kwargs)

    def key_for(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key for kid, or None if unknown or past its rollover window."""
        now = self.clock()
        with self._lock:
            version = self._version() if self._version is not None else None
            if self._loaded_at is None or now - self._loaded_at >= self.ttl_s or version != self._seen_version:
                self._seen_version = version
                self._reload(now)
            elif kid not in self._keys and now - self._loaded_at >= self.miss_interval_s:
                self._reload(now)
            cached = self._keys.get(kid)
        if cached is None or (cached.expires_at is not None and cached.expires_at <= now):
            return None
        return cached.public_key

    def _reload(self, now: float) -> None:
        self._loaded_at = now  # set even on failure: a broken source is retried, not hammered
        self.reloads += 1
        try:
            document = self._source()
            self._keys = _parse_jwks(document)
        except Exception as exc:  # keep serving the last good keys
            log.warning("JWKS reload failed (%s); keeping %d cached keys",
                        type(exc).__name__, len(self._keys))


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, _CachedKey]:
    """Only EC P-256 ES256 signing keys are accepted; anything else is skipped."""
    keys: dict[str, _CachedKey] = {}
    for jwk in document.get("keys", []):
        if not isinstance(jwk, Mapping):
            continue
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            continue
        if jwk.get("alg", "ES256") != "ES256" or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or "d" in jwk:  # a private member means a misconfiguration
            continue
        try:
            x = int.from_bytes(_b64url_decode(jwk["x"]), "big")
            y = int.from_bytes(_b64url_decode(jwk["y"]), "big")
            public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except (KeyError, TypeError, ValueError):
            continue
        exp = jwk.get("exp")
        expires_at = float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
        keys[kid] = _CachedKey(public_key, expires_at)
    return keys


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
