"""HTTP reviewers over real loopback HTTP against a fake of the hosted APIs (uvicorn +
starlette on 127.0.0.1, started in the test's event loop). The fake answers in each
provider's documented response shape, or with scripted 429/500/garbage responses."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from dataclasses import dataclass, field
from typing import Any
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleet_tui.engine.kit.breaker import BreakerState, CircuitBreaker
from fleet_tui.engine.review.reviewers.http import (
    AnthropicReviewer,
    GeminiReviewer,
    HttpReviewer,
    OpenAIReviewer,
    make_http_reviewer,
)

KEY = "sk-test-0123456789abcdefKEYVALUE"
VERDICT = {"verdict": "request_changes", "comments": ["src/a.py:3: off-by-one in the loop"]}
DIFF = "diff --git a/src/a.py b/src/a.py\n--- a/src/a.py\n+++ b/src/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"


def anthropic_shape(text: str) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 20},
    }


def openai_shape(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }


def gemini_shape(text: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 20},
    }


@dataclass
class FakeModelApi:
    """Records every request; answers from the script, else a verdict in the provider's shape."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Response] = field(default_factory=list)
    answer_text: str = "Review done.\n```json\n" + json.dumps(VERDICT) + "\n```"
    delay_s: float = 0.0

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            {"path": request.url.path, "headers": dict(request.headers), "body": json.loads(body or b"{}")}
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.script:
            return self.script.pop(0)
        path = request.url.path
        if path == "/v1/messages":
            if request.headers.get("anthropic-version") != "2023-06-01":
                return JSONResponse({"type": "error", "error": {"message": "bad version"}}, 400)
            return JSONResponse(anthropic_shape(self.answer_text))
        if path == "/v1/chat/completions":
            return JSONResponse(openai_shape(self.answer_text))
        if path.startswith("/v1beta/models/") and path.endswith(":generateContent"):
            return JSONResponse(gemini_shape(self.answer_text))
        return JSONResponse({"error": {"message": f"no route {path}"}}, 404)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[tuple[FakeModelApi, str]]:
    fake = FakeModelApi()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(fake.app(), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    for _ in range(200):
        if uv.started:
            break
        await asyncio.sleep(0.01)
    assert uv.started
    yield fake, f"http://127.0.0.1:{port}"
    uv.should_exit = True
    await task
    sock.close()


@pytest.fixture
def api(server: tuple[FakeModelApi, str]) -> tuple[FakeModelApi, str]:
    fake, base = server
    fake.requests.clear()
    fake.script.clear()
    fake.answer_text = "Review done.\n```json\n" + json.dumps(VERDICT) + "\n```"
    fake.delay_s = 0.0
    return fake, base


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def build(provider: str, base: str, **options: Any) -> HttpReviewer:
    return make_http_reviewer(provider, f"{provider}-model", KEY, base_url=base, **options)


async def test_anthropic_request_shape_and_verdict(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    verdict = await AnthropicReviewer("claude-test", KEY, base_url=base).review(
        DIFF, focus="logic", task_description="Fix the loop"
    )
    assert verdict.verdict == "request_changes"
    assert verdict.comments == VERDICT["comments"]
    assert (verdict.reviewer, verdict.focus, verdict.error) == ("anthropic:claude-test", "logic", None)
    sent = fake.requests[0]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["body"]["model"] == "claude-test"
    assert sent["body"]["max_tokens"] > 0
    assert "logic" in sent["body"]["system"]
    assert sent["body"]["messages"][0]["role"] == "user"
    assert "Fix the loop" in sent["body"]["messages"][0]["content"]
    assert "+x = 2" in sent["body"]["messages"][0]["content"]


async def test_openai_request_shape_and_verdict(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    fake.answer_text = json.dumps({"verdict": "approve", "comments": []})
    verdict = await OpenAIReviewer("gpt-test", KEY, base_url=base).review(DIFF, focus="security")
    assert verdict.verdict == "approve" and verdict.error is None
    sent = fake.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert [m["role"] for m in sent["body"]["messages"]] == ["system", "user"]
    assert sent["body"]["model"] == "gpt-test"


async def test_gemini_request_shape_and_verdict(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    verdict = await GeminiReviewer("gemini-2.5-pro", KEY, base_url=base).review(DIFF, focus="architecture")
    assert verdict.verdict == "request_changes"
    sent = fake.requests[0]
    assert sent["path"] == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert sent["headers"]["x-goog-api-key"] == KEY
    assert KEY not in sent["path"]
    assert "+x = 2" in sent["body"]["contents"][0]["parts"][0]["text"]


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
async def test_429_is_retried_after_the_advertised_wait(api: tuple[FakeModelApi, str], provider: str) -> None:
    fake, base = api
    fake.script = [
        JSONResponse({"error": {"message": "slow down"}}, 429, headers={"retry-after": "7"}),
        JSONResponse({"error": {"message": "slow down"}}, 429, headers={"retry-after": "999"}),
    ]
    sleep = RecordingSleep()
    verdict = await build(provider, base, sleep=sleep, max_retry_wait_s=20).review(DIFF)
    assert verdict.verdict == "request_changes" and verdict.error is None
    assert sleep.waits == [7.0, 20.0]  # the second wait is capped
    assert len(fake.requests) == 3


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
async def test_persistent_429_becomes_comment(api: tuple[FakeModelApi, str], provider: str) -> None:
    fake, base = api
    fake.script = [JSONResponse({"error": {"message": "quota"}}, 429) for _ in range(3)]
    sleep = RecordingSleep()
    verdict = await build(provider, base, sleep=sleep).review(DIFF)
    assert verdict.verdict == "comment"
    assert verdict.error is not None and "429" in verdict.error
    assert len(fake.requests) == 3 and sleep.waits == [1.0, 1.0]


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
async def test_500_becomes_comment_with_error_and_no_key(
    api: tuple[FakeModelApi, str], provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake, base = api
    # a hostile server echoing the key back must not get it into our errors or logs
    fake.script = [JSONResponse({"error": {"message": f"internal error for key {KEY}"}}, 500)]
    with caplog.at_level(logging.DEBUG):
        verdict = await build(provider, base).review(DIFF)
    assert verdict.verdict == "comment"
    assert verdict.error is not None and verdict.error.startswith("HTTP 500")
    assert KEY not in verdict.error
    assert KEY not in json.dumps(verdict.to_dict())
    assert KEY not in caplog.text
    assert "internal error" in verdict.error
    assert len(fake.requests) == 1


async def test_garbage_body_and_wrong_shape_become_comment(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    fake.script = [Response("not json", 200, media_type="text/plain"), JSONResponse({"choices": []})]
    first = await build("openai", base).review(DIFF)
    second = await build("openai", base).review(DIFF)
    assert first.verdict == second.verdict == "comment"
    assert "unexpected answer shape" in first.error and "unexpected answer shape" in second.error


async def test_answer_without_verdict_becomes_comment(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    fake.answer_text = "I think it is fine."
    verdict = await build("anthropic", base).review(DIFF)
    assert verdict.verdict == "comment"
    assert verdict.error == "no JSON verdict in the answer"


async def test_timeout_becomes_comment(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    fake.delay_s = 1.0
    verdict = await build("gemini", base, timeout_s=0.1).review(DIFF)
    assert verdict.verdict == "comment" and verdict.error.startswith("timeout")


async def test_connection_refused_becomes_comment() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    verdict = await build("openai", f"http://127.0.0.1:{port}").review(DIFF)
    assert verdict.verdict == "comment" and verdict.error.startswith("network error")


async def test_missing_key_is_a_comment_without_a_request(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    verdict = await AnthropicReviewer("m", lambda: None, base_url=base).review(DIFF)
    assert verdict.verdict == "comment" and "no API key" in verdict.error
    assert fake.requests == []


async def test_key_source_callable_and_repr_hides_key(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    reviewer = OpenAIReviewer("gpt-test", lambda: KEY, base_url=base)
    assert KEY not in repr(reviewer)
    await reviewer.review(DIFF)
    assert fake.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


async def test_secrets_in_the_diff_are_not_sent(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    leaked = "AKIAIOSFODNN7EXAMPLE"
    await build("anthropic", base, env={}).review(DIFF + f"+aws = '{leaked}'\n")
    assert leaked not in json.dumps(fake.requests[0]["body"])


async def test_breaker_opens_after_repeated_failures(api: tuple[FakeModelApi, str]) -> None:
    fake, base = api
    now = [0.0]
    breaker = CircuitBreaker("adapter:review", clock=lambda: now[0])
    fake.script = [JSONResponse({"error": "down"}, 500) for _ in range(5)]
    reviewer = build("openai", base, breaker=breaker)
    for _ in range(5):
        await reviewer.review(DIFF)
    assert breaker.state is BreakerState.OPEN
    skipped = await reviewer.review(DIFF)
    assert "breaker is open" in skipped.error
    assert len(fake.requests) == 5  # the open breaker made no request
    now[0] = 30.0
    probe = await reviewer.review(DIFF)
    assert probe.verdict == "request_changes"
    assert breaker.state is BreakerState.CLOSED


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        make_http_reviewer("mistral", "m", KEY)


def test_importing_these_engine_modules_pulls_in_no_rich_or_textual() -> None:
    # httpx imports rich for its CLI; the reviewers import httpx lazily because of it.
    import subprocess
    import sys

    modules = ("kit.breaker choice.reputation choice.routing spawn.enrichment kit.sanitize review.reviewers"
               " review.reviewers.builtin review.reviewers.http")
    code = (
        "import importlib, sys\n"
        f"for m in {modules.split()!r}: importlib.import_module('fleet_tui.engine.' + m)\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'rich', 'textual'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
