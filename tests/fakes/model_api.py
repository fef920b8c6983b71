"""Loopback fakes of the hosted model APIs the agent CLIs speak, scripting a real agent loop.

One HTTP server on 127.0.0.1 answers as Anthropic Messages (``/v1/messages``, JSON or SSE),
OpenAI Responses (``/v1/responses``, SSE) and Chat Completions (``/v1/chat/completions``),
and Gemini generateContent (``...:generateContent`` / ``:streamGenerateContent?alt=sse``).
A request that offers tools is a turn of the agent's loop: the fake answers turn N with step
N of its script (a shell command, a file write, or the final answer). Requests without
tools (titles, summaries, quota probes) get a short text. A scenario other than ``work``
answers every request with that failure: an outage (503), a bad key (401), a usage limit
(429 with a reset time), the whole server or per model (``scenario_for_model``).

Everything it was asked is kept in ``requests`` for tests to inspect.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OUTAGE, BAD_KEY, USAGE_LIMIT, WORK = "outage", "bad_key", "usage_limit", "work"
USAGE = {"input_tokens": 1200, "output_tokens": 80, "cached_tokens": 300}


@dataclass(frozen=True)
class Step:
    """One turn: run `command` in the shell, or write `path` with `text`, or answer `text`."""

    command: str | None = None
    path: str | None = None
    text: str = ""


def agent_script(*, test_command: str, commit: bool, filename: str = "hello.txt",
                 content: str = "hello from the agent\n") -> list[Step]:
    """Write a file, run the repository's tests, commit (or not), then answer."""
    steps = [Step(path=filename, text=content), Step(command=test_command)]
    if commit:
        steps += [Step(command=f"git add {filename}"), Step(command="git commit -m 'Add hello'")]
    return steps + [Step(text="Done: added hello.txt and the tests pass.")]


@dataclass
class FakeModelApi:
    script: list[Step]
    scenario: str = WORK
    reset_epoch: int = field(default_factory=lambda: int(time.time()) + 3600)
    requests: list[dict[str, Any]] = field(default_factory=list)
    workdir: str = ""  # absolute paths for tools that want them (claude's Write)
    aider_turns: int = 0
    # as a model does when its tool use was refused: stop, say what it needed (Anthropic)
    stop_when_refused: bool = False
    # a scenario per model asked for (the model name as it reaches the API): several tasks
    # of one test meet different failures on one server
    scenario_for_model: dict[str, str] = field(default_factory=dict)

    def start(self) -> FakeModelApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # model lists, health probes
                api._send_json(self, 200, {"data": [], "models": [], "object": "list"})

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                api.requests.append({"path": self.path, "body": body, "headers": dict(self.headers),
                                     "at": time.time()})
                api._answer(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- dispatch ------------------------------------------------------------------------

    def _answer(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        path = h.path
        if "count_tokens" in path:
            return self._send_json(h, 200, {"input_tokens": 10})
        scenario = self.scenario_for_model.get(str(body.get("model")), self.scenario)
        if scenario != WORK:
            return self._failure(h, path, scenario)
        if path.startswith("/v1/messages") or path.startswith("/messages"):
            return self._anthropic(h, body)
        if path.endswith("/responses"):
            return self._responses(h, body)
        if path.endswith("/chat/completions"):
            return self._chat(h, body)
        if ":generateContent" in path or ":streamGenerateContent" in path:
            return self._gemini(h, body, stream=":streamGenerateContent" in path)
        self._send_json(h, 404, {"error": {"message": f"no such endpoint {path}"}})

    def _failure(self, h: BaseHTTPRequestHandler, path: str, scenario: str) -> None:
        anthropic = "/messages" in path
        if scenario == BAD_KEY:
            body = ({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
                    if anthropic else {"error": {"message": "Incorrect API key provided: sk-test***. ",
                                                 "type": "invalid_request_error", "code": "invalid_api_key",
                                                 "status": "UNAUTHENTICATED"}})
            return self._send_json(h, 401, body)
        if scenario == USAGE_LIMIT:
            reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.reset_epoch))
            message = f"Usage limit reached; the limit resets at {reset}"
            if path.endswith("/chat/completions"):  # OpenAI's spent quota: no retry-after to wait on
                return self._send_json(h, 429, {"error": {
                    "message": f"You exceeded your current quota; the limit resets at {reset}",
                    "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}})
            if "generateContent" in path:  # Google's shape: a daily quota, no retrying it
                return self._send_json(h, 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                    "message": f"You exceeded your current quota. {message}",
                    "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                        "quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]}]}})
            body = ({"type": "error", "error": {"type": "rate_limit_error", "message": message}}
                    if anthropic else {"error": {"message": message, "type": "usage_limit_reached",
                                                 "code": "rate_limit_exceeded", "status": "RESOURCE_EXHAUSTED",
                                                 "resets_at": self.reset_epoch}})
            return self._send_json(h, 429, body, {"retry-after": "3600",
                                                  "anthropic-ratelimit-unified-reset": str(self.reset_epoch),
                                                  "anthropic-ratelimit-unified-status": "rejected"})
        body = ({"type": "error", "error": {"type": "api_error", "message": "Service Unavailable"}}
                if anthropic else {"error": {"message": "Service Unavailable", "type": "server_error",
                                             "status": "UNAVAILABLE"}})
        self._send_json(h, 503, body)

    def _step(self, turn: int) -> Step:
        return self.script[min(turn, len(self.script) - 1)]

    # --- Anthropic Messages -----------------------------------------------------------------

    def _anthropic(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        tools = {t.get("name") for t in body.get("tools") or []}
        turn = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
        blocks: list[dict[str, Any]]
        stop = "end_turn"
        if "Bash" not in tools:
            blocks = [{"type": "text", "text": "Fleet task"}]
        elif self.stop_when_refused and _refused(body.get("messages") or []):
            blocks = [{"type": "text", "text": REFUSED_ANSWER}]
        else:
            step = self._step(turn)
            tool_id = f"toolu_{uuid.uuid4().hex[:20]}"
            if step.command is not None:
                blocks = [{"type": "tool_use", "id": tool_id, "name": "Bash",
                           "input": {"command": step.command, "description": "run a command"}}]
                stop = "tool_use"
            elif step.path is not None:
                target = f"{self.workdir}/{step.path}" if self.workdir else step.path
                blocks = [{"type": "tool_use", "id": tool_id, "name": "Write",
                           "input": {"file_path": target, "content": step.text}}]
                stop = "tool_use"
            else:
                blocks = [{"type": "text", "text": step.text}]
        usage = {"input_tokens": USAGE["input_tokens"], "output_tokens": USAGE["output_tokens"],
                 "cache_read_input_tokens": USAGE["cached_tokens"], "cache_creation_input_tokens": 0}
        message = {"id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
                   "model": body.get("model", "claude-test"), "content": blocks, "stop_reason": stop,
                   "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            return self._send_json(h, 200, message)
        events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": {
            **message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}})]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                events += [("content_block_start", {"type": "content_block_start", "index": index,
                                                    "content_block": {"type": "text", "text": ""}}),
                           ("content_block_delta", {"type": "content_block_delta", "index": index,
                                                    "delta": {"type": "text_delta", "text": block["text"]}})]
            else:
                events += [("content_block_start", {"type": "content_block_start", "index": index,
                                                    "content_block": {**block, "input": {}}}),
                           ("content_block_delta", {"type": "content_block_delta", "index": index,
                                                    "delta": {"type": "input_json_delta",
                                                              "partial_json": json.dumps(block["input"])}})]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": USAGE["output_tokens"]}}),
                   ("message_stop", {"type": "message_stop"})]
        self._send_sse(h, events)

    # --- OpenAI Responses (codex) ----------------------------------------------------------------

    def _responses(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        tools = {t.get("name") or (t.get("function") or {}).get("name") for t in body.get("tools") or []}
        turn = sum(1 for item in body.get("input") or []
                   if isinstance(item, dict) and item.get("type") == "function_call_output")
        response_id = f"resp_{uuid.uuid4().hex[:20]}"
        items: list[dict[str, Any]]
        if not tools:
            items = [_message_item("Fleet task")]
        else:
            step = self._step(turn)
            command = step.command
            if command is None and step.path is not None:
                command = f"printf '%s' {json.dumps(step.text)} > {step.path}"
            if command is None:
                items = [_message_item(step.text)]
            else:
                items = [_shell_call(tools, command)]
        usage = {"input_tokens": USAGE["input_tokens"], "input_tokens_details": {"cached_tokens": USAGE["cached_tokens"]},
                 "output_tokens": USAGE["output_tokens"], "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": USAGE["input_tokens"] + USAGE["output_tokens"]}
        response = {"id": response_id, "object": "response", "status": "completed", "model": body.get("model"),
                    "output": items, "usage": usage}
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"type": "response.created", "response": {**response, "status": "in_progress", "output": []}})]
        for index, item in enumerate(items):
            events.append(("response.output_item.added", {"type": "response.output_item.added", "output_index": index, "item": item}))
            if item["type"] == "message":
                events.append(("response.output_text.delta", {"type": "response.output_text.delta", "output_index": index,
                                                              "content_index": 0, "item_id": item["id"],
                                                              "delta": item["content"][0]["text"]}))
            events.append(("response.output_item.done", {"type": "response.output_item.done", "output_index": index, "item": item}))
        events.append(("response.completed", {"type": "response.completed", "response": response}))
        self._send_sse(h, events)

    # --- OpenAI Chat Completions (aider, opencode) -----------------------------------------------------

    def _chat(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        tools = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
        turn = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
        message: dict[str, Any] = {"role": "assistant", "content": "Fleet task"}
        finish = "stop"
        system = " ".join(str(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "system")
        if not tools and ("SEARCH/REPLACE" in system or "listing" in system):
            message = {"role": "assistant", "content": self._aider_edit("SEARCH/REPLACE" in system)}
        elif tools:
            step = self._step(turn)
            name = "bash" if "bash" in tools else sorted(t for t in tools if t)[0]
            if step.command is not None or step.path is not None:
                command = step.command or f"printf '%s' {json.dumps(step.text)} > {step.path}"
                args = {"command": command, "description": "run a command"}
                message = {"role": "assistant", "content": None, "tool_calls": [{
                    "id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)}}]}
                finish = "tool_calls"
            else:
                message = {"role": "assistant", "content": step.text}
        usage = {"prompt_tokens": USAGE["input_tokens"], "completion_tokens": USAGE["output_tokens"],
                 "total_tokens": USAGE["input_tokens"] + USAGE["output_tokens"],
                 "prompt_tokens_details": {"cached_tokens": USAGE["cached_tokens"]}}
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "created": int(time.time()), "model": body.get("model")}
        if not body.get("stream"):
            return self._send_json(h, 200, {**base, "object": "chat.completion", "usage": usage,
                                            "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
        delta = dict(message)
        if "tool_calls" in delta:
            delta["tool_calls"] = [{**call, "index": 0} for call in delta["tool_calls"]]
        chunks = [{**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                  {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                   "usage": usage}]
        self._send_sse(h, [("", c) for c in chunks], done=True)

    def _aider_edit(self, search_replace: bool) -> str:
        """aider edits through text (its prompt carries few-shot assistant turns, so turns
        are counted here): first the script's first file write, in the edit format its
        system prompt asks for, then the script's last words."""
        writes = [step for step in self.script if step.path is not None]
        self.aider_turns += 1
        if self.aider_turns > 1 or not writes:
            return self.script[-1].text or "Done."
        step = writes[0]
        if search_replace:
            return f"{step.path}\n```\n<<<<<<< SEARCH\n=======\n{step.text}>>>>>>> REPLACE\n```\n"
        return f"{step.path}\n```\n{step.text}```\n"

    # --- Gemini generateContent ---------------------------------------------------------------

    def _gemini(self, h: BaseHTTPRequestHandler, body: dict[str, Any], *, stream: bool) -> None:
        tools = {d.get("name") for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []}
        turn = sum(1 for c in body.get("contents") or [] if c.get("role") == "model")
        part: dict[str, Any] = {"text": "Fleet task"}
        if tools:
            step = self._step(turn)
            if step.command is not None:
                part = {"functionCall": {"name": "run_shell_command", "args": {"command": step.command}}}
            elif step.path is not None:
                target = f"{self.workdir}/{step.path}" if self.workdir else step.path
                part = {"functionCall": {"name": "write_file", "args": {"file_path": target, "content": step.text}}}
            else:
                part = {"text": step.text}
        answer = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                  "usageMetadata": {"promptTokenCount": USAGE["input_tokens"], "candidatesTokenCount": USAGE["output_tokens"],
                                    "cachedContentTokenCount": USAGE["cached_tokens"],
                                    "totalTokenCount": USAGE["input_tokens"] + USAGE["output_tokens"]},
                  "modelVersion": "gemini-test"}
        if stream:
            return self._send_sse(h, [("", answer)])
        self._send_json(h, 200, answer)

    # --- wire ---------------------------------------------------------------------------------

    @staticmethod
    def _send_json(h: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("request-id", f"req_{uuid.uuid4().hex[:12]}")
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _send_sse(h: BaseHTTPRequestHandler, events: list[tuple[str, dict[str, Any]]], done: bool = False) -> None:
        parts = []
        for name, data in events:
            head = f"event: {name}\n" if name else ""
            parts.append(f"{head}data: {json.dumps(data)}\n\n")
        if done:
            parts.append("data: [DONE]\n\n")
        payload = "".join(parts).encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Content-Length", str(len(payload)))
        h.send_header("request-id", f"req_{uuid.uuid4().hex[:12]}")
        h.end_headers()
        h.wfile.write(payload)


REFUSED_ANSWER = "I was not allowed to run that command; please grant it and I will continue."


def _refused(messages: list[dict[str, Any]]) -> bool:
    """The last message carries a tool result the permission policy refused."""
    last = messages[-1] if messages else {}
    content = last.get("content") if isinstance(last.get("content"), list) else []
    return any(block.get("type") == "tool_result" and block.get("is_error")
               and "denied" in json.dumps(block.get("content")) for block in content)


def _message_item(text: str) -> dict[str, Any]:
    return {"type": "message", "id": f"msg_{uuid.uuid4().hex[:16]}", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def _shell_call(tools: set[str | None], command: str) -> dict[str, Any]:
    """A shell call in whichever shape this codex version offers."""
    if "bash" in tools:  # opencode
        name, args = "bash", {"command": command, "description": "run a command"}
    elif "shell_command" in tools:
        name, args = "shell_command", {"command": command}
    elif "exec_command" in tools:
        name, args = "exec_command", {"cmd": command}
    else:
        name, args = "shell", {"command": ["bash", "-lc", command]}
    return {"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:16]}", "call_id": f"call_{uuid.uuid4().hex[:12]}",
            "name": name, "arguments": json.dumps(args), "status": "completed"}
