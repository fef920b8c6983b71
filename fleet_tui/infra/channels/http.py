"""The one HTTP path both webhook channels share: post JSON, translate failures into
ChannelError / RateLimited with every secret scrubbed from the message."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from fleet_tui.infra.channels.base import ChannelError, scrub

REQUEST_TIMEOUT_S = 10.0


class _RedactSecrets(logging.Filter):
    """httpx logs every request URL at INFO; a webhook URL or bot token must not reach logs."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message, self.secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


_REDACT = _RedactSecrets()


def guard_secrets(*secrets: str) -> None:
    """Keep these out of httpx's log lines from now on (httpcore logs host and port only)."""
    _REDACT.secrets.update(s for s in secrets if s)
    logger = logging.getLogger("httpx")
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)


async def post_json(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any], *, channel: str,
    secrets: tuple[str, ...],
) -> httpx.Response:
    try:
        return await client.post(url, json=payload, timeout=REQUEST_TIMEOUT_S)
    except httpx.HTTPError as exc:  # connect/read errors: worth another attempt
        raise ChannelError(f"{channel}: {type(exc).__name__}: {scrub(str(exc), secrets)}") from None


def retry_after_header(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by Discord or Telegram)."""
    for header in ("retry-after", "x-ratelimit-reset-after"):
        value = response.headers.get(header)
        if value is not None:
            try:
                return max(float(value), 0.0)
            except ValueError:
                continue
    return None


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def status_error(channel: str, response: httpx.Response, detail: str = "") -> ChannelError:
    """5xx may pass; other 4xx answers will not change by asking again."""
    retryable = response.status_code >= 500
    suffix = f": {detail}" if detail else ""
    return ChannelError(f"{channel}: HTTP {response.status_code}{suffix}", retryable=retryable)
