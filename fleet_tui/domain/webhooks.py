"""Standard Webhooks (standardwebhooks.com): the one signing scheme for what the fleet sends
(outbox webhooks) and what it receives (POST /api/events).

A message carries `webhook-id` (the event id: receivers deduplicate on it), `webhook-timestamp`
(integer seconds since the epoch) and `webhook-signature`: space-separated `v1,<base64 of
HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, one per key, so that keys rotate by listing the
new one beside the old. A secret written `whsec_<base64>` is that base64's bytes (the scheme's
own format, which its libraries expect); any other secret is its UTF-8 bytes. The timestamp
binds the signature to a moment: outside the tolerance window a message is refused, and
within it the receiver refuses an id it has seen (replay)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
DEFAULT_TOLERANCE_S = 300
SECRET_PREFIX = "whsec_"
VERSION = "v1"
# The id becomes the event id downstream: short, printable, no separators of the signed text.
MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_:-]{1,128}\Z")


class SignatureRefused(ValueError):
    """Why a message is not accepted, in one line naming the header."""


def key_bytes(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except binascii.Error:
            raise ValueError(f"a {SECRET_PREFIX} secret must be base64 after the prefix") from None
    return secret.encode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_bytes(secret), signed, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def sign(secrets: Sequence[str], msg_id: str, body: bytes, *, now: float) -> dict[str, str]:
    """The three headers of a message signed with every key (the first is the current one)."""
    if not secrets:
        raise ValueError("signing needs at least one secret")
    if not MESSAGE_ID_RE.match(msg_id):
        raise ValueError(f"{ID_HEADER} must match {MESSAGE_ID_RE.pattern}")
    timestamp = int(now)
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: " ".join(signature(s, msg_id, timestamp, body) for s in secrets)}


def verify(secrets: Sequence[str], headers: Mapping[str, str], body: bytes, *, now: float,
           tolerance_s: float = DEFAULT_TOLERANCE_S) -> str:
    """The message id when one of the signatures is valid under one of the keys and the
    timestamp lies within tolerance of now; SignatureRefused otherwise. Checked on the raw
    body before anything parses it; comparisons in constant time."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, given = (lower.get(h, "") for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not MESSAGE_ID_RE.match(msg_id):
        raise SignatureRefused(f"missing or bad {ID_HEADER} (must match {MESSAGE_ID_RE.pattern})")
    if not stamp.isascii() or not stamp.isdigit():
        raise SignatureRefused(f"missing or bad {TIMESTAMP_HEADER} (integer seconds since the epoch)")
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureRefused(f"{TIMESTAMP_HEADER} is outside the tolerance window of {tolerance_s:g} s")
    offered = [part.encode() for part in given.split() if part.startswith(VERSION + ",")]
    for secret in secrets:
        expected = signature(secret, msg_id, timestamp, body).encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return msg_id
    raise SignatureRefused(f"missing or bad {SIGNATURE_HEADER}")
