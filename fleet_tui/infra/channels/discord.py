"""Discord webhook: one embed per notification, coloured by outcome.
Limits from Discord's docs: title 256, description 4096, 25 fields (name 256, value 1024),
footer 2048, 6000 characters over the whole embed."""

from __future__ import annotations

import httpx

from fleet_tui.infra.channels.base import (
    Notification,
    Outcome,
    RateLimited,
    scrub,
    truncate,
)
from fleet_tui.infra.channels.http import (
    guard_secrets,
    json_body,
    post_json,
    retry_after_header,
    status_error,
)

COLOURS: dict[Outcome, int] = {
    "success": 0x2ECC71,
    "failure": 0xE74C3C,
    "warning": 0xF1C40F,
    "info": 0x3498DB,
}
TITLE_MAX, DESCRIPTION_MAX, FIELDS_MAX = 256, 4096, 25
FIELD_NAME_MAX, FIELD_VALUE_MAX, FOOTER_MAX, EMBED_TOTAL_MAX = 256, 1024, 2048, 6000


def discord_embed(n: Notification) -> dict[str, object]:
    """The summary comes first; fields fill what the 6000-character budget leaves."""
    title = truncate(f"{n.type} · {n.task_id or 'fleet'}", TITLE_MAX)
    footer = truncate(f"fleet-tui · event {n.event_id}", FOOTER_MAX)
    room = EMBED_TOTAL_MAX - len(title) - len(footer)
    description = truncate(n.summary, max(min(DESCRIPTION_MAX, room), 1))
    room -= len(description)
    fields: list[dict[str, object]] = []
    for name, value in list(n.fields.items())[:FIELDS_MAX]:
        name = truncate(name, FIELD_NAME_MAX) or "-"
        value = truncate(value, min(FIELD_VALUE_MAX, room - len(name))) or "-"
        if room - len(name) - len(value) < 0:
            break
        room -= len(name) + len(value)
        fields.append({"name": name, "value": value, "inline": len(value) <= 40})
    return {
        "title": title,
        "description": description,
        "color": COLOURS[n.resolved_outcome],
        "fields": fields,
        "timestamp": n.created_at.isoformat(),
        "footer": {"text": footer},
    }


class DiscordChannel:
    name = "discord"

    def __init__(self, webhook_url: str, client: httpx.AsyncClient) -> None:
        self._url = webhook_url
        self._client = client
        # .../webhooks/<id>/<token>: the URL and its token both stay secret
        self._secrets = (webhook_url, webhook_url.rstrip("/").rsplit("/", 1)[-1])
        guard_secrets(*self._secrets)

    def __repr__(self) -> str:
        return "DiscordChannel(webhook_url=***)"

    async def send(self, n: Notification) -> None:
        payload = {
            "embeds": [discord_embed(n)],
            "allowed_mentions": {"parse": []},  # a summary must never ping @everyone
        }
        response = await post_json(self._client, self._url, payload, channel=self.name,
                                   secrets=self._secrets)
        if response.is_success:  # 204 without ?wait=true, 200 with it
            return
        body = json_body(response)
        if response.status_code == 429:
            retry_after = body.get("retry_after")
            seconds = float(retry_after) if isinstance(retry_after, (int, float)) else None
            raise RateLimited(
                "discord: rate limited",
                retry_after_s=seconds if seconds is not None else retry_after_header(response),
            )
        detail = scrub(str(body.get("message", "")), self._secrets)[:200]
        raise status_error(self.name, response, detail)
