"""NATS sink: each outbox event published to `<prefix>.<event type>` (fleet.task.merged),
the event id in the Nats-Msg-Id header. With a JetStream stream configured, every publish
is acknowledged by the server and deduplicated on that header; otherwise core NATS with a
flush, which confirms the server has read the batch."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from fleet_tui.extras import require

require("nats")  # configured without nats-py: one line naming the extra when the relay starts

_SUBJECT_TOKEN = re.compile(r"[^A-Za-z0-9_.-]")
CONNECT_TIMEOUT_S = 3
PUBLISH_TIMEOUT_S = 5.0


def subject_for(prefix: str, event_type: str) -> str:
    """fleet.task.merged; characters NATS treats specially (space, *, >) become _."""
    return f"{prefix}.{_SUBJECT_TOKEN.sub('_', event_type).strip('.') or 'event'}"


def redacted(url: str) -> str:
    """nats://user:pass@host:4222 -> nats://host:4222 (credentials never reach logs)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}"


class NatsSink:
    def __init__(self, url: str, *, stream: str | None = None, subject_prefix: str = "fleet") -> None:
        self.name = "nats"
        self._url = url
        self._stream = stream
        self._prefix = subject_prefix
        self._nc: Any = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"NatsSink({redacted(self._url)}, stream={self._stream!r})"

    async def _client(self) -> Any:
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                import nats

                self._nc = await nats.connect(
                    self._url, connect_timeout=CONNECT_TIMEOUT_S, max_reconnect_attempts=2,
                    reconnect_time_wait=1, allow_reconnect=True, name="fleet-outbox-relay")
            return self._nc

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Publish every event; returns {event_id: error} for those that failed."""
        if not events:
            return {}
        try:
            nc = await self._client()
        except Exception as exc:  # unreachable server: the whole batch waits for a retry
            return {e["event_id"]: f"nats: cannot connect to {redacted(self._url)}: {type(exc).__name__}"
                    for e in events}
        if self._stream:
            return await self._publish_acked(nc, events)
        try:
            for event in events:
                await nc.publish(subject_for(self._prefix, event["type"]), _body(event),
                                 headers={"Nats-Msg-Id": event["event_id"]})
            await nc.flush(timeout=PUBLISH_TIMEOUT_S)
        except Exception as exc:
            return {e["event_id"]: f"nats: {type(exc).__name__}" for e in events}
        return {}

    async def _publish_acked(self, nc: Any, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        js = nc.jetstream()
        failures: dict[str, str] = {}

        async def one(event: Mapping[str, Any]) -> None:
            try:
                await js.publish(subject_for(self._prefix, event["type"]), _body(event),
                                 timeout=PUBLISH_TIMEOUT_S, stream=self._stream,
                                 headers={"Nats-Msg-Id": event["event_id"]})
            except Exception as exc:
                failures[event["event_id"]] = f"nats jetstream: {type(exc).__name__}"

        await asyncio.gather(*(one(e) for e in events))
        return failures

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()
            except Exception:
                await self._nc.close()
        self._nc = None


def _body(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), default=str).encode()
