"""Webhook sink: each outbox event POSTed as JSON to a configured URL, signed with the
Standard Webhooks scheme (domain/webhooks.py): `webhook-id` is the event id, which the
receiver deduplicates on, and stays the same on every retry; the timestamp and signature are
made afresh per attempt. A 2xx answer is delivery; anything else is retried by the relay.
URLs may carry tokens: they never appear in errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from fleet_tui.domain import webhooks

EVENT_TYPE_HEADER = "X-Fleet-Event-Type"
REQUEST_TIMEOUT_S = 10.0
CONCURRENCY = 8


def sink_name(url: str) -> str:
    """Stable per URL, without the URL (which may hold a token)."""
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:8]


class WebhookSink:
    def __init__(self, url: str, *, secrets: Sequence[str] = (), client: Any = None) -> None:
        self.name = sink_name(url)
        self._url = url
        self._secrets = list(secrets)
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
        event_id = str(event["event_id"])
        headers = {"Content-Type": "application/json", EVENT_TYPE_HEADER: str(event["type"]),
                   webhooks.ID_HEADER: event_id}
        if self._secrets:
            headers.update(webhooks.sign(self._secrets, event_id, body, now=time.time()))
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
