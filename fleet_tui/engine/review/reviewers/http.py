"""Reviewers that ask a hosted model API (Anthropic, OpenAI, Gemini) for a JSON verdict.

Failures never raise: rate limits are retried (bounded waits), anything else (5xx,
timeouts, answers without a verdict) becomes a "comment" verdict carrying the error.
API keys travel only in request headers; errors and logs are scrubbed of them.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from typing import TYPE_CHECKING, Any
from collections.abc import Awaitable, Callable, Mapping

from fleet_tui.engine.kit.breaker import CircuitBreaker
from fleet_tui.engine.review.reviewers.verdict import Verdict, parse_verdict_text
from fleet_tui.engine.kit.sanitize import sanitize

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

KeySource = str | Callable[[], str | None] | None
Sleep = Callable[[float], Awaitable[None]]
MAX_DIFF_CHARS = 120_000  # keep requests bounded; reviewers see the head of a huge diff

SYSTEM_PROMPT = (
    "You are a meticulous code reviewer. Your focus: {focus}. Review the diff for problems "
    "within that focus only. Answer with one JSON object and nothing else: "
    '{{"verdict": "approve" | "request_changes" | "comment", "comments": ["file:line: what and why", ...]}}. '
    "Use request_changes only for problems that must be fixed before merging."
)


class HttpReviewer:
    """Shared request/retry/parse logic; subclasses give the provider's request and answer shape."""

    provider = "http"
    default_base_url = ""

    def __init__(
        self,
        model: str,
        api_key: KeySource,
        *,
        base_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 120.0,
        max_tokens: int = 2048,
        max_retries: int = 2,
        max_retry_wait_s: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        breaker: CircuitBreaker | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self._client = client
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.max_retry_wait_s = max_retry_wait_s
        self._sleep = sleep
        self.breaker = breaker
        self._env = env  # for sanitizing the diff before it leaves the machine

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model}"

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    # --- provider shape -------------------------------------------------------------------

    def request(self, key: str, system: str, user: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        raise NotImplementedError

    def answer_text(self, data: Any) -> str:
        raise NotImplementedError

    # --- the call ---------------------------------------------------------------------------

    async def review(self, diff: str, *, focus: str = "logic", task_description: str = "") -> Verdict:
        key = self._key()
        if not key:
            return Verdict.failed(self.name, focus, f"no API key configured for {self.provider}")
        if self.breaker is not None and not self.breaker.allow():
            return Verdict.failed(self.name, focus, f"{self.provider} breaker is open")
        system = SYSTEM_PROMPT.format(focus=focus)
        user = self._user_prompt(diff, task_description)
        url, headers, body = self.request(key, system, user)
        try:
            verdict = await self._call(url, headers, body, focus)
        except Exception as exc:  # a reviewer must never take the pipeline down
            verdict = Verdict.failed(self.name, focus, self._scrub(f"{type(exc).__name__}: {exc}", key))
        if self.breaker is not None:
            # answers that parsed badly are the model's fault, not the service's
            if verdict.error and verdict.error.startswith(("HTTP", "timeout", "network", "rate")):
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
        if verdict.error:
            log.warning("reviewer %s failed: %s", self.name, verdict.error)
        return verdict

    async def _call(self, url: str, headers: dict[str, str], body: dict[str, Any], focus: str) -> Verdict:
        # Imported here: `import httpx` pulls in rich (httpx's CLI), and importing the engine
        # must not (house rule: only ui/ touches textual or rich).
        import httpx

        client = self._client or httpx.AsyncClient(timeout=self.timeout_s)
        try:
            for attempt in range(self.max_retries + 1):
                try:
                    response = await client.post(url, headers=headers, json=body, timeout=self.timeout_s)
                except httpx.TimeoutException:
                    return Verdict.failed(self.name, focus, f"timeout after {self.timeout_s:g}s")
                except httpx.HTTPError as exc:
                    return Verdict.failed(self.name, focus, f"network error: {type(exc).__name__}")
                if response.status_code == 429 and attempt < self.max_retries:
                    await self._sleep(self._retry_after(response))
                    continue
                if response.status_code == 429:
                    return Verdict.failed(
                        self.name, focus, f"rate limited (HTTP 429) after {self.max_retries} retries"
                    )
                if response.status_code >= 400:
                    return Verdict.failed(
                        self.name, focus, f"HTTP {response.status_code}: {self._error_excerpt(response, headers)}"
                    )
                return self._verdict_from(response, focus)
        finally:
            if self._client is None:
                await client.aclose()
        raise AssertionError("unreachable")  # the loop always returns

    def _verdict_from(self, response: httpx.Response, focus: str) -> Verdict:
        try:
            text = self.answer_text(response.json())
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Verdict.failed(self.name, focus, f"unexpected answer shape: {type(exc).__name__}")
        parsed = parse_verdict_text(text)
        return Verdict(self.name, focus, parsed.verdict, parsed.comments, parsed.error)

    def _retry_after(self, response: httpx.Response) -> float:
        raw = response.headers.get("retry-after", "")
        wait = 1.0
        try:
            wait = float(raw)
        except ValueError:
            when = email.utils.parsedate_to_datetime(raw) if raw else None
            if when is not None:
                wait = when.timestamp() - time.time()
        return min(max(wait, 0.0), self.max_retry_wait_s)

    def _user_prompt(self, diff: str, task_description: str) -> str:
        # Secret-looking strings and local paths are not the reviewer's business.
        clean = sanitize(diff[:MAX_DIFF_CHARS], worktree=None, env=self._env)
        head = f"Task the change was made for:\n{task_description.strip()}\n\n" if task_description.strip() else ""
        return f"{head}Diff to review:\n```diff\n{clean}\n```"

    def _error_excerpt(self, response: httpx.Response, headers: Mapping[str, str]) -> str:
        try:
            data = response.json()
            message = data.get("error", data) if isinstance(data, dict) else data
            if isinstance(message, dict):
                message = message.get("message", message)
            text = message if isinstance(message, str) else json.dumps(message)
        except ValueError:
            text = response.text
        return self._scrub(text[:200], *headers.values())

    def _key(self) -> str | None:
        source = self._api_key
        return source() if callable(source) else source

    @staticmethod
    def _scrub(text: str, *secrets: str) -> str:
        for secret in secrets:
            if secret and len(secret) >= 8:
                text = text.replace(secret, "«redacted»")
        return sanitize(text, worktree=None, env={})


class AnthropicReviewer(HttpReviewer):
    provider = "anthropic"
    default_base_url = "https://api.anthropic.com"
    api_version = "2023-06-01"

    def request(self, key: str, system: str, user: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        headers = {"x-api-key": key, "anthropic-version": self.api_version, "content-type": "application/json"}
        body = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": user}],
        }
        return f"{self.base_url}/v1/messages", headers, body

    def answer_text(self, data: Any) -> str:
        return "".join(block["text"] for block in data["content"] if block.get("type") == "text")


class OpenAIReviewer(HttpReviewer):
    provider = "openai"
    default_base_url = "https://api.openai.com"

    def request(self, key: str, system: str, user: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        body = {
            "model": self.model,
            "max_completion_tokens": self.max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        return f"{self.base_url}/v1/chat/completions", headers, body

    def answer_text(self, data: Any) -> str:
        content = data["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("content is not text")
        return content


class GeminiReviewer(HttpReviewer):
    provider = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"

    def request(self, key: str, system: str, user: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        # the key goes in a header, never in the URL (URLs end up in logs and errors)
        headers = {"x-goog-api-key": key, "content-type": "application/json"}
        body = {
            "systemInstruction": {"parts": [{"text": system}]},
            "contents": [{"role": "user", "parts": [{"text": user}]}],
            "generationConfig": {"maxOutputTokens": self.max_tokens},
        }
        return f"{self.base_url}/v1beta/models/{self.model}:generateContent", headers, body

    def answer_text(self, data: Any) -> str:
        parts = data["candidates"][0]["content"]["parts"]
        return "".join(part.get("text", "") for part in parts)


PROVIDERS: dict[str, type[HttpReviewer]] = {
    "anthropic": AnthropicReviewer,
    "openai": OpenAIReviewer,
    "gemini": GeminiReviewer,
}


def make_http_reviewer(provider: str, model: str, api_key: KeySource, **options: Any) -> HttpReviewer:
    try:
        cls = PROVIDERS[provider]
    except KeyError:
        raise ValueError(f"reviewer provider {provider!r}: expected one of {sorted(PROVIDERS)}") from None
    return cls(model, api_key, **options)
