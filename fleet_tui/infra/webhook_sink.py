"""Webhook sink: each outbox event POSTed as JSON to a configured URL, the body signed
with HMAC-SHA256 (`X-Fleet-Signature: sha256=<hex>`, GitHub's scheme) and the event id in
`X-Fleet-Event-Id` for the receiver to deduplicate on. A 2xx answer is delivery; anything
else is retried by the relay. URLs may carry tokens: they never appear in errors."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Fleet-Signature"
EVENT_ID_HEADER = "X-Fleet-Event-Id"
EVENT_TYPE_HEADER = "X-Fleet-Event-Type"
REQUEST_TIMEOUT_S = 10.0
CONCURRENCY = 8


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver runs on the raw body before parsing it."""
    return hmac.compare_digest(signature(secret, body).encode(), header.encode())


def sink_name(url: str) -> str:
    """Stable per URL, without the URL (which may hold a token)."""
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:8]


class WebhookSink:
    def __init__(self, url: str, *, secret: str | None, client: Any = None) -> None:
        self.name = sink_name(url)
        self._url = url
        self._secret = secret
        self._client = client  # an httpx.AsyncClient; made lazily (httpx imports rich)
        self._own_client = client is None
        self._host = urlsplit(url).hostname or "?"

    def __repr__(self) -> str:
        return f"WebhookSink({self.name}, host={self._host})"

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S)
        gate = asyncio.Semaphore(CONCURRENCY)
        failures: dict[str, str] = {}

        async def one(event: Mapping[str, Any]) -> None:
            async with gate:
                error = await self._post(event)
            if error:
                failures[event["event_id"]] = error

        await asyncio.gather(*(one(e) for e in events))
        return failures

    async def _post(self, event: Mapping[str, Any]) -> str | None:
        body = json.dumps(event, separators=(",", ":"), default=str).encode()
        headers = {"Content-Type": "application/json", EVENT_ID_HEADER: str(event["event_id"]),
                   EVENT_TYPE_HEADER: str(event["type"])}
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except Exception as exc:  # the exception text may quote the URL: name the type only
            return f"{self.name} ({self._host}): {type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"{self.name} ({self._host}): HTTP {response.status_code}"

    async def close(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
        self._client = None
