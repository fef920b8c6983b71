"""Notification channels over real loopback HTTP: a uvicorn + starlette server in the test
loop speaks Discord's webhook and Telegram's Bot API answers (shapes from their docs) and
checks what it receives the way they do (embed limits, MarkdownV2 reserved characters).
Only the sleep between retries is injected, so that backoff is asserted, not waited."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fixtures.loopback import serve
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleet_tui.config import NotificationSettings
from fleet_tui.infra.channels import (
    Channel,
    CliChannel,
    DiscordChannel,
    Notification,
    TelegramChannel,
    build_channels,
    deliver,
    escape_markdown_v2,
)
from fleet_tui.infra.channels.telegram import MARKDOWN_V2_RESERVED

TOKEN = "123456:AAE-secret-bot-token"
WEBHOOK_PATH = "/api/webhooks/987654321/hook-secret-token"
RESERVED = "_*[]()~`>#+-=|{}.!\\"


# --- the loopback server ------------------------------------------------------------------

def markdown_v2_error(text: str) -> str | None:
    """Telegram's check, reduced to the entities we send (bold): None when it parses."""
    bold = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text):
                return "Can't parse entities: text must not end with a backslash"
            i += 2
            continue
        if char == "*":
            bold = not bold
        elif char in RESERVED:
            return (f"Can't parse entities: character '{char}' is reserved and must be "
                    f"escaped with the preceding '\\'")
        i += 1
    return "Can't find end of Bold entity" if bold else None


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


@dataclass
class Scripted:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ChatServer:
    base_url: str = ""
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    script: dict[str, list[Scripted]] = field(default_factory=lambda: {"discord": [], "telegram": []})

    def then(self, route: str, *answers: Scripted) -> None:
        self.script[route].extend(answers)

    def bodies(self, route: str) -> list[dict[str, Any]]:
        return [body for r, body in self.received if r == route]

    def _scripted(self, route: str) -> Response | None:
        if not self.script[route]:
            return None
        answer = self.script[route].pop(0)
        if answer.body is None:
            return Response(status_code=answer.status, headers=answer.headers)
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    async def discord(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(("discord", body))
        scripted = self._scripted("discord")
        if scripted is not None:
            return scripted
        problem = discord_embed_problem(body)
        if problem:
            return JSONResponse({"code": 50035, "message": f"Invalid Form Body: {problem}"},
                                status_code=400)
        return Response(status_code=204)  # a webhook without ?wait=true answers 204

    async def telegram(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(("telegram", body))
        if request.path_params["token"] != TOKEN:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"},
                                status_code=404)
        scripted = self._scripted("telegram")
        if scripted is not None:
            return scripted
        problem = markdown_v2_error(body["text"]) if body.get("parse_mode") == "MarkdownV2" else None
        if problem:
            return JSONResponse({"ok": False, "error_code": 400,
                                 "description": f"Bad Request: {problem}"}, status_code=400)
        return JSONResponse({"ok": True, "result": {
            "message_id": len(self.received), "date": 1_700_000_000,
            "chat": {"id": int(body["chat_id"]), "type": "private"}, "text": unescape(body["text"]),
        }})


def discord_embed_problem(body: dict[str, Any]) -> str | None:
    embeds = body.get("embeds") or []
    if not 1 <= len(embeds) <= 10:
        return "embeds"
    embed = embeds[0]
    fields = embed.get("fields", [])
    total = len(embed.get("title", "")) + len(embed.get("description", "")) + sum(
        len(f["name"]) + len(f["value"]) for f in fields) + len(embed.get("footer", {}).get("text", ""))
    checks = {
        "title": len(embed.get("title", "")) <= 256,
        "description": len(embed.get("description", "")) <= 4096,
        "fields": len(fields) <= 25,
        "field": all(0 < len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024 for f in fields),
        "color": isinstance(embed.get("color"), int) and 0 <= embed["color"] <= 0xFFFFFF,
        "total": total <= 6000,
    }
    broken = [name for name, ok in checks.items() if not ok]
    return ", ".join(broken) or None


@pytest.fixture
async def chat_server() -> AsyncIterator[ChatServer]:
    server_state = ChatServer()
    app = Starlette(routes=[
        Route("/api/webhooks/{wid}/{token}", server_state.discord, methods=["POST"]),
        Route("/bot{token}/sendMessage", server_state.telegram, methods=["POST"]),
    ])
    async with serve(app) as base_url:
        server_state.base_url = base_url
        yield server_state


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def discord(server: ChatServer, client: httpx.AsyncClient) -> DiscordChannel:
    return DiscordChannel(server.base_url + WEBHOOK_PATH, client)


def telegram(server: ChatServer, client: httpx.AsyncClient, token: str = TOKEN) -> TelegramChannel:
    return TelegramChannel(token, "4242", client, api_base=server.base_url)


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def note(type_: str = "failed", outcome: Any = None, summary: str = "agent exited 1",
         **fields: str) -> Notification:
    return Notification(event_id="evt-1", type=type_, task_id="t-42", summary=summary,
                        outcome=outcome, fields=fields,
                        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))


# --- Discord ------------------------------------------------------------------------------

@pytest.mark.parametrize(("outcome", "colour"), [
    ("success", 0x2ECC71), ("failure", 0xE74C3C), ("warning", 0xF1C40F), ("info", 0x3498DB)])
async def test_discord_embed_and_colour(chat_server: ChatServer, client: httpx.AsyncClient,
                                        outcome: str, colour: int) -> None:
    await discord(chat_server, client).send(note(outcome=outcome, branch="task/42", model="m1"))
    (body,) = chat_server.bodies("discord")
    (embed,) = body["embeds"]
    assert embed["title"] == "failed · t-42"
    assert embed["description"] == "agent exited 1"
    assert embed["color"] == colour
    assert embed["fields"] == [{"name": "branch", "value": "task/42", "inline": True},
                               {"name": "model", "value": "m1", "inline": True}]
    assert embed["timestamp"] == "2025-01-02T03:04:05+00:00"
    assert "evt-1" in embed["footer"]["text"]
    assert body["allowed_mentions"] == {"parse": []}


async def test_discord_colour_defaults_from_the_type(chat_server: ChatServer,
                                                     client: httpx.AsyncClient) -> None:
    channel = discord(chat_server, client)
    for type_ in ("completed", "ci_failed", "budget_exceeded", "spawned"):
        await channel.send(note(type_=type_))
    colours = [body["embeds"][0]["color"] for body in chat_server.bodies("discord")]
    assert colours == [0x2ECC71, 0xE74C3C, 0xF1C40F, 0x3498DB]


async def test_discord_respects_embed_limits(chat_server: ChatServer,
                                             client: httpx.AsyncClient) -> None:
    channel = discord(chat_server, client)
    await channel.send(note(**{f"field-{i}": "ok" for i in range(30)}))
    assert len(chat_server.bodies("discord")[0]["embeds"][0]["fields"]) == 25

    huge = Notification(event_id="e", type="failed", task_id="t" * 300, summary="s" * 9000,
                        fields={f"field-{i}": "v" * 2000 for i in range(30)})
    await channel.send(huge)  # the server answers 400 past any limit, which would raise
    embed = chat_server.bodies("discord")[1]["embeds"][0]
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert embed["description"].startswith("sss") and len(embed["description"]) <= 4096
    assert discord_embed_problem({"embeds": [embed]}) is None


async def test_discord_429_retry_after_from_the_body_is_honoured(
        chat_server: ChatServer, client: httpx.AsyncClient) -> None:
    chat_server.then("discord", Scripted(429, {"message": "You are being rate limited.",
                                               "retry_after": 2.5, "global": False}))
    sleep, seen_before_attempt = SleepRecorder(), []

    async def record(channel: str, attempt: int) -> None:
        seen_before_attempt.append((channel, attempt, len(chat_server.received)))

    outcomes = await deliver(note(), [discord(chat_server, client)], record_attempt=record,
                             sleep=sleep, fallback=None)
    assert outcomes["discord"].delivered and outcomes["discord"].attempts == 2
    assert sleep.delays == [2.5]  # the server's figure, not the 1 s base
    # the record is written before each attempt reaches the server
    assert seen_before_attempt == [("discord", 1, 0), ("discord", 2, 1)]


async def test_discord_429_retry_after_header(chat_server: ChatServer,
                                              client: httpx.AsyncClient) -> None:
    chat_server.then("discord", Scripted(429, None, {"Retry-After": "7"}))
    sleep = SleepRecorder()
    outcomes = await deliver(note(), [discord(chat_server, client)], sleep=sleep, fallback=None)
    assert outcomes["discord"].delivered
    assert sleep.delays == [7.0]


async def test_discord_500_then_success(chat_server: ChatServer, client: httpx.AsyncClient) -> None:
    chat_server.then("discord", Scripted(500, {"message": "oops"}), Scripted(502, None))
    sleep = SleepRecorder()
    outcomes = await deliver(note(), [discord(chat_server, client)], sleep=sleep, fallback=None)
    assert outcomes["discord"].delivered and outcomes["discord"].attempts == 3
    assert sleep.delays == [1.0, 2.0]


async def test_discord_unknown_webhook_is_not_retried(chat_server: ChatServer,
                                                      client: httpx.AsyncClient) -> None:
    chat_server.then("discord", Scripted(404, {"message": "Unknown Webhook", "code": 10015}))
    sleep, cli = SleepRecorder(), io.StringIO()
    outcomes = await deliver(note(), [discord(chat_server, client)], sleep=sleep,
                             fallback=CliChannel(cli))
    outcome = outcomes["discord"]
    assert (outcome.delivered, outcome.attempts, sleep.delays) == (False, 1, [])
    assert "HTTP 404" in (outcome.last_error or "") and "hook-secret-token" not in outcome.last_error
    assert cli.getvalue() == "[FLEET] failed | t-42 | agent exited 1\n"


# --- Telegram -----------------------------------------------------------------------------

def test_reserved_characters_are_telegrams_list() -> None:
    assert set(MARKDOWN_V2_RESERVED) == set(RESERVED)
    assert escape_markdown_v2(RESERVED) == "".join("\\" + c for c in RESERVED)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaping_round_trips_and_parses(text: str) -> None:
    escaped = escape_markdown_v2(text)
    assert markdown_v2_error(escaped) is None
    assert unescape(escaped) == text


async def test_telegram_escapes_every_reserved_character(chat_server: ChatServer,
                                                         client: httpx.AsyncClient) -> None:
    summary = f"fix: {RESERVED} in login_test.py (v1.2)!"
    await telegram(chat_server, client).send(note(summary=summary, branch="task/fix-1.2"))
    (body,) = chat_server.bodies("telegram")
    assert body["parse_mode"] == "MarkdownV2" and body["chat_id"] == "4242"
    assert markdown_v2_error(body["text"]) is None  # otherwise the server answered 400
    shown = unescape(body["text"])
    assert "*failed*" in body["text"]
    assert summary in shown and "task/fix-1.2" in shown and "t-42" in shown


async def test_telegram_unescaped_text_is_refused_by_the_server(
        chat_server: ChatServer, client: httpx.AsyncClient) -> None:
    # the loopback server really checks: raw reserved characters get Telegram's 400
    response = await client.post(f"{chat_server.base_url}/bot{TOKEN}/sendMessage",
                                 json={"chat_id": "1", "text": "v1.2", "parse_mode": "MarkdownV2"})
    assert response.status_code == 400 and "reserved" in response.json()["description"]


async def test_telegram_429_retry_after_is_honoured(chat_server: ChatServer,
                                                    client: httpx.AsyncClient) -> None:
    chat_server.then("telegram", Scripted(429, {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7}}))
    sleep = SleepRecorder()
    outcomes = await deliver(note(), [telegram(chat_server, client)], sleep=sleep, fallback=None)
    assert outcomes["telegram"].delivered and outcomes["telegram"].attempts == 2
    assert sleep.delays == [7.0]


async def test_absurd_retry_after_is_capped(chat_server: ChatServer,
                                            client: httpx.AsyncClient) -> None:
    chat_server.then("telegram", Scripted(429, {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 86400",
        "parameters": {"retry_after": 86400}}))
    sleep = SleepRecorder()
    await deliver(note(), [telegram(chat_server, client)], sleep=sleep, fallback=None)
    assert sleep.delays == [300.0]


async def test_telegram_token_never_leaks(chat_server: ChatServer, client: httpx.AsyncClient,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "999:wrong-secret-token"
    outcomes = await deliver(note(), [telegram(chat_server, client, token=wrong)],
                             sleep=SleepRecorder(), fallback=None)
    assert not outcomes["telegram"].delivered and outcomes["telegram"].attempts == 1
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: a connection error
    unreachable = TelegramChannel(TOKEN, "1", client, api_base=f"http://127.0.0.1:{port}")
    outcomes2 = await deliver(note(), [unreachable], sleep=SleepRecorder(), fallback=None,
                              max_attempts=2)
    assert outcomes2["telegram"].attempts == 2 and not outcomes2["telegram"].delivered
    for text in (str(outcomes), str(outcomes2), caplog.text, repr(unreachable)):
        assert wrong not in text and TOKEN not in text and "secret" not in text


# --- delivery across channels ---------------------------------------------------------------

async def test_all_fail_then_the_cli_line(chat_server: ChatServer, client: httpx.AsyncClient) -> None:
    for route in ("discord", "telegram"):
        chat_server.then(route, *[Scripted(500, {"ok": False, "error_code": 500,
                                                 "description": "Internal Server Error"})] * 4)
    sleep, cli, records = SleepRecorder(), io.StringIO(), []

    async def record(channel: str, attempt: int) -> None:
        records.append((channel, attempt))

    n = note(summary="agent exited 1\nafter 3 retries")
    outcomes = await deliver(n, [discord(chat_server, client), telegram(chat_server, client)],
                             record_attempt=record, sleep=sleep, fallback=CliChannel(cli))
    for name in ("discord", "telegram"):
        assert outcomes[name].attempts == 4 and not outcomes[name].delivered
        assert outcomes[name].fallback_written
        assert [a for c, a in records if c == name] == [1, 2, 3, 4]
    assert sorted(sleep.delays) == [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]
    assert cli.getvalue() == "[FLEET] failed | t-42 | agent exited 1 after 3 retries\n"


async def test_channels_are_independent(chat_server: ChatServer, client: httpx.AsyncClient) -> None:
    chat_server.then("discord", *[Scripted(503, None)] * 3)

    class Broken:
        name = "broken"

        async def send(self, n: Notification) -> None:
            raise RuntimeError("a bug in a channel")

    cli = io.StringIO()
    outcomes = await deliver(note(), [discord(chat_server, client), telegram(chat_server, client),
                                      Broken()],
                             sleep=SleepRecorder(), max_attempts=3, fallback=CliChannel(cli))
    assert outcomes["telegram"].delivered and outcomes["telegram"].attempts == 1
    assert not outcomes["discord"].delivered and outcomes["discord"].attempts == 3
    assert not outcomes["broken"].delivered and outcomes["broken"].attempts == 1
    assert cli.getvalue().count("[FLEET]") == 1  # one line, however many channels failed


async def test_backoff_is_capped() -> None:
    class Down:
        name = "down"

        async def send(self, n: Notification) -> None:
            from fleet_tui.infra.channels import ChannelError
            raise ChannelError("down")

    sleep = SleepRecorder()
    outcomes = await deliver(note(), [Down()], sleep=sleep, base_s=10, cap_s=30,
                             max_attempts=5, fallback=None)
    assert sleep.delays == [10, 20, 30, 30]
    assert outcomes["down"].attempts == 5


async def test_cli_channel_line() -> None:
    out = io.StringIO()
    await CliChannel(out).send(Notification("e", "health_alert", None, "DLQ depth 12\n  rising"))
    assert out.getvalue() == "[FLEET] health_alert | - | DLQ depth 12 rising\n"


async def test_build_channels_from_settings(client: httpx.AsyncClient) -> None:
    assert [c.name for c in build_channels(NotificationSettings(), client)] == ["cli"]
    configured = NotificationSettings(discord_webhook_url="https://discord.invalid" + WEBHOOK_PATH,
                                      telegram_bot_token=TOKEN, telegram_chat_id="1")
    channels: list[Channel] = build_channels(configured, client)
    assert [c.name for c in channels] == ["discord", "telegram"]
    assert all(isinstance(c, Channel) for c in channels)
    assert "hook-secret-token" not in repr(channels) and TOKEN not in repr(channels)
    assert json.dumps([repr(c) for c in channels])
