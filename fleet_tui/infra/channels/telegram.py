"""Telegram bot: sendMessage with parse_mode MarkdownV2. Every reserved character of user
text is escaped; Telegram's 429 answer carries parameters.retry_after, which is honoured."""

from __future__ import annotations

import re

import httpx

from fleet_tui.infra.channels.base import Notification, Outcome, RateLimited, scrub, truncate
from fleet_tui.infra.channels.http import (
    guard_secrets,
    json_body,
    post_json,
    retry_after_header,
    status_error,
)

# From Telegram's Bot API, "MarkdownV2 style": these must be escaped with a backslash,
# and so must the backslash itself.
MARKDOWN_V2_RESERVED = "_*[]()~`>#+-=|{}.!\\"
_RESERVED_RE = re.compile("([" + re.escape(MARKDOWN_V2_RESERVED) + "])")
MESSAGE_MAX = 4096  # characters after entity parsing
SUMMARY_MAX, FIELD_MAX, FIELDS_MAX = 2500, 200, 10
EMOJI: dict[Outcome, str] = {"success": "✅", "failure": "❌", "warning": "⚠️", "info": "ℹ️"}


def escape_markdown_v2(text: str) -> str:
    return _RESERVED_RE.sub(r"\\\1", text)


def telegram_text(n: Notification) -> str:
    """Bold type, the task id, the summary, then one line per field; all user text escaped."""
    head = (f"{EMOJI[n.resolved_outcome]} *{escape_markdown_v2(n.type)}* \\| "
            f"{escape_markdown_v2(n.task_id or 'fleet')}")
    lines = [head, escape_markdown_v2(truncate(n.summary, SUMMARY_MAX))]
    for name, value in list(n.fields.items())[:FIELDS_MAX]:
        lines.append(f"*{escape_markdown_v2(truncate(name, 64))}*: "
                     f"{escape_markdown_v2(truncate(value, FIELD_MAX))}")
    return "\n".join(lines)


class TelegramChannel:
    name = "telegram"

    def __init__(self, token: str, chat_id: str, client: httpx.AsyncClient,
                 api_base: str = "https://api.telegram.org") -> None:
        self._token = token
        self._chat_id = chat_id
        self._client = client
        self._url = f"{api_base.rstrip('/')}/bot{token}/sendMessage"
        self._secrets = (self._url, token)
        guard_secrets(*self._secrets)

    def __repr__(self) -> str:
        return f"TelegramChannel(chat_id={self._chat_id!r}, token=***)"

    async def send(self, n: Notification) -> None:
        payload = {
            "chat_id": self._chat_id,
            "text": telegram_text(n),
            "parse_mode": "MarkdownV2",
            "link_preview_options": {"is_disabled": True},
        }
        response = await post_json(self._client, self._url, payload, channel=self.name,
                                   secrets=self._secrets)
        body = json_body(response)
        if response.is_success and body.get("ok", True):
            return
        if response.status_code == 429 or body.get("error_code") == 429:
            parameters = body.get("parameters") or {}
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            raise RateLimited(
                "telegram: too many requests",
                retry_after_s=float(retry_after) if isinstance(retry_after, (int, float))
                else retry_after_header(response),
            )
        detail = scrub(str(body.get("description", "")), self._secrets)[:200]
        raise status_error(self.name, response, detail)
