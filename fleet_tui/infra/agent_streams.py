"""Agent CLIs' machine-readable output streams, made readable and summed up.

claude (``--output-format stream-json``), codex (``exec --json``), gemini
(``--output-format stream-json``) and opencode (``run --format json``) print one JSON event per
line. ``StreamReader`` turns each event into short readable lines (assistant text, each tool
call with its command or file, results in short) and keeps what the run amounted to: token
usage, cost, the session id (for resume), the final status and any error text.

The launcher runs it between the agent and the terminal, so the live log is readable, and
ends the log with ``[fleet] ...`` summary lines the conductor reads back (``parse_summary``).
Rendered agent lines are always indented, so an agent can never print a line that starts
with the summary tag. Standard library only: the launcher imports it by file path under
``python -I -S``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

STREAM_KINDS = frozenset({"claude", "codex", "gemini", "opencode"})
SUMMARY_TAG = "[fleet] "
SHORT = 160  # characters of a tool result or command shown per line
DENIAL_CHARS = 400  # a denied command is kept whole up to this: the operator may grant exactly it
USAGE_KEYS = ("input_tokens", "output_tokens", "cached_tokens", "total_tokens")
# codex 0.171 waits for its API forever when it cannot connect ("Reconnecting... waiting for
# network", backing off, retries setting or not): after this long the run is given up, so an
# unreachable API ends as api_unavailable instead of holding the task until its timeout.
NETWORK_WAIT_S = 120.0
CODEX_WAITING = "waiting for network"
OPENCODE_REJECTED = "rejected permission"  # "The user rejected permission to use this specific tool call."


def _short(text: Any, limit: int = SHORT) -> str:
    flat = " ".join(str(text if text is not None else "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _tool_target(name: str, args: Any, limit: int = SHORT) -> str:
    """The part of a tool call worth a line: its command, or the file it touches."""
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return _short(args, limit)
    if not isinstance(args, dict):
        return ""
    for key in ("command", "cmd", "file_path", "filePath", "path", "absolute_path", "pattern", "url"):
        value = args.get(key)
        if value:
            return _short(" ".join(value) if isinstance(value, list) else value, limit)
    return _short(json.dumps(args, ensure_ascii=False), 80)


@dataclass
class StreamReader:
    """Feed it the agent's stdout lines; it returns what to show for each."""

    kind: str
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))
    cost_usd: float | None = None
    session_id: str | None = None
    status: str | None = None  # "ok" or "error" once the CLI said how the run ended
    errors: list[str] = field(default_factory=list)
    denials: list[str] = field(default_factory=list)  # tools the permission policy refused
    # set once the CLI is stuck where it will not end on its own: the launcher stops it
    gave_up: str | None = None
    network_wait_s: float = NETWORK_WAIT_S
    _claude_totals: bool = False
    _waiting_since: float | None = None

    def feed(self, line: str) -> list[str]:
        text = line.rstrip("\n")
        try:
            event = json.loads(text)
        except ValueError:
            return [f"  {text}"] if text.strip() else []
        if not isinstance(event, dict):
            return [f"  {text}"]
        try:
            handler = getattr(self, f"_{self.kind}")
            return [f"  {out}" for out in handler(event) if out]
        except Exception as exc:  # a new event shape must never stop the agent's output
            return [f"  (unreadable {self.kind} event: {type(exc).__name__})"]

    # --- claude stream-json ----------------------------------------------------------------

    def _claude(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        self.session_id = event.get("session_id") or self.session_id
        if kind == "system" and event.get("subtype") == "init":
            return [f"session {event.get('session_id', '?')} model {event.get('model', '?')}"]
        if kind in ("assistant", "user"):
            out = []
            message = event.get("message") or {}
            content = message.get("content")
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            for block in content or []:
                btype = block.get("type")
                if btype == "text" and kind == "assistant":
                    out += [f"assistant: {_short(block.get('text'), 400)}"]
                elif btype == "tool_use":
                    out.append(f"tool {block.get('name')}: {_tool_target(block.get('name', ''), block.get('input'))}")
                elif btype == "tool_result":
                    body = block.get("content")
                    if isinstance(body, list):
                        body = " ".join(str(b.get("text", "")) for b in body if isinstance(b, dict))
                    mark = "error" if block.get("is_error") else "result"
                    out.append(f"  {mark}: {_short(body)}")
            return out
        if kind == "result":
            usage = event.get("usage") or {}
            self._claude_totals = True
            self.usage["input_tokens"] = _int(usage.get("input_tokens"))
            self.usage["output_tokens"] = _int(usage.get("output_tokens"))
            self.usage["cached_tokens"] = (_int(usage.get("cache_read_input_tokens"))
                                           + _int(usage.get("cache_creation_input_tokens")))
            if event.get("total_cost_usd") is not None:
                self.cost_usd = float(event["total_cost_usd"])
            self.status = "error" if event.get("is_error") or event.get("subtype") != "success" else "ok"
            for denial in event.get("permission_denials") or []:
                self.denials.append(f"{denial.get('tool_name')}: {_tool_target('', denial.get('tool_input'), DENIAL_CHARS)}")
            if self.status == "error":
                self.errors.append(_short(event.get("result") or event.get("subtype"), 400))
            return [f"result {event.get('subtype')}: {_short(event.get('result'), 400)}"]
        return []

    # --- codex exec --json -----------------------------------------------------------------

    def _codex(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        if kind == "thread.started":
            self.session_id = event.get("thread_id") or self.session_id
            return [f"session {self.session_id}"]
        if kind == "turn.completed":
            usage = event.get("usage") or {}
            self.usage["input_tokens"] += _int(usage.get("input_tokens"))
            self.usage["output_tokens"] += _int(usage.get("output_tokens"))
            self.usage["cached_tokens"] += _int(usage.get("cached_input_tokens"))
            self.status = self.status or "ok"
            return []
        if kind == "error" and CODEX_WAITING in str(event.get("message")):
            return self._codex_waits(str(event.get("message")))
        self._waiting_since = None
        if kind in ("turn.failed", "error"):
            error = event.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            message = message or event.get("message") or json.dumps(event)[:200]
            self.status = "error"
            self.errors.append(_short(message, 400))
            return [f"error: {_short(message, 400)}"]
        if kind == "item.completed":
            item = event.get("item") or {}
            itype = item.get("type")
            if itype == "agent_message":
                return [f"assistant: {_short(item.get('text'), 400)}"]
            if itype == "command_execution":
                return [f"tool shell: {_short(item.get('command'))}",
                        f"  result (exit {item.get('exit_code')}): {_short(item.get('aggregated_output'))}"]
            if itype == "file_change":
                return [f"tool edit: {c.get('kind', 'change')} {c.get('path')}" for c in item.get("changes") or []]
            if itype == "error":
                self.errors.append(_short(item.get("message"), 400))
                return [f"error: {_short(item.get('message'), 400)}"]
        return []

    def _codex_waits(self, message: str) -> list[str]:
        now = time.monotonic()
        since = self._waiting_since = self._waiting_since or now
        if now - since < self.network_wait_s or self.gave_up:
            return [f"error: {_short(message, 400)}"]
        self.gave_up = f"could not connect to the model API for {now - since:.0f} s: {_short(message, 300)}"
        self.status = "error"
        self.errors.append(self.gave_up)
        return [f"error: {self.gave_up}; stopping the agent"]

    # --- gemini stream-json ----------------------------------------------------------------

    def _gemini(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        if kind == "init":
            self.session_id = event.get("session_id") or self.session_id
            return [f"session {self.session_id} model {event.get('model', '?')}"]
        if kind == "message" and event.get("role") == "assistant":
            return [f"assistant: {_short(event.get('content'), 400)}"]
        if kind == "tool_use":
            return [f"tool {event.get('tool_name')}: {_tool_target('', event.get('parameters'))}"]
        if kind == "tool_result":
            body = event.get("output") or (event.get("error") or {}).get("message", "")
            return [f"  {event.get('status', 'result')}: {_short(body)}"]
        if kind == "error":
            self.errors.append(_short(event.get("message"), 400))
            return [f"error: {_short(event.get('message'), 400)}"]
        if kind == "result":
            stats = event.get("stats") or {}
            self.usage["input_tokens"] = _int(stats.get("input_tokens") or stats.get("input"))
            self.usage["output_tokens"] = _int(stats.get("output_tokens"))
            self.usage["cached_tokens"] = _int(stats.get("cached"))
            self.usage["total_tokens"] = _int(stats.get("total_tokens"))
            self.status = "ok" if event.get("status") == "success" else "error"
            if self.status == "error":
                error = event.get("error") or {}
                self.errors.append(_short(error.get("message") if isinstance(error, dict) else error, 400))
            return [f"result {event.get('status')}"]
        return []

    # --- opencode run --format json ----------------------------------------------------------

    def _opencode(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        self.session_id = event.get("sessionID") or self.session_id
        part = event.get("part") or {}
        if kind == "text":
            return [f"assistant: {_short(part.get('text'), 400)}"]
        if kind == "tool_use":
            state = part.get("state") or {}
            if state.get("status") == "error" and OPENCODE_REJECTED in str(state.get("error")):
                # `opencode run` rejects what its permission config says to ask about
                self.denials.append(f"{part.get('tool')}: {_tool_target('', state.get('input'), DENIAL_CHARS)}")
            return [f"tool {part.get('tool')}: {_tool_target('', state.get('input'))}",
                    f"  {state.get('status', 'result')}: {_short(state.get('output') or state.get('error'))}"]
        if kind == "step_finish":
            tokens = part.get("tokens") or {}
            cache = tokens.get("cache") or {}
            self.usage["input_tokens"] += _int(tokens.get("input"))
            self.usage["output_tokens"] += _int(tokens.get("output"))
            self.usage["cached_tokens"] += _int(cache.get("read")) + _int(cache.get("write"))
            if part.get("cost") is not None:
                self.cost_usd = (self.cost_usd or 0.0) + float(part["cost"])
            self.status = self.status or "ok"
            return []
        if kind == "error":
            error = event.get("error") or {}
            data = error.get("data") if isinstance(error, dict) else None
            message = (data or {}).get("message") if isinstance(data, dict) else None
            message = message or (error.get("name") if isinstance(error, dict) else str(error))
            self.status = "error"
            self.errors.append(_short(message, 400))
            return [f"error: {_short(message, 400)}"]
        return []

    # --- the end of the run -----------------------------------------------------------------

    def summary(self) -> list[str]:
        """The lines the conductor reads back: usage, then the outcome."""
        usage = dict(self.usage)
        if not usage["total_tokens"]:
            usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        figures = " ".join(f"{k}={v}" for k, v in usage.items())
        if self.cost_usd is not None:
            figures += f" cost_usd={self.cost_usd:.6f}"
        lines = [f"{SUMMARY_TAG}usage {figures}"]
        outcome = {"status": self.status or "unknown", "session": self.session_id or ""}
        lines.append(f"{SUMMARY_TAG}result " + " ".join(f"{k}={v}" for k, v in outcome.items()))
        for denial in self.denials[:5]:
            lines.append(f"{SUMMARY_TAG}denied {_short(denial, DENIAL_CHARS + 80)}")
        for error in self.errors[-3:]:
            lines.append(f"{SUMMARY_TAG}error {_short(error, 400)}")
        return lines


_FIELD = re.compile(r"(\w+)=(\S*)")


def parse_summary(lines: list[str]) -> dict[str, Any]:
    """What the launcher's summary lines say (the last of each kind wins):
    {"usage": {...}, "status": ..., "session": ..., "denied": [...], "errors": [...]}."""
    found: dict[str, Any] = {"usage": {}, "denied": [], "errors": []}
    for line in lines:
        if not line.startswith(SUMMARY_TAG):
            continue
        verb, _, rest = line[len(SUMMARY_TAG):].partition(" ")
        if verb == "usage":
            usage: dict[str, Any] = {}
            for key, value in _FIELD.findall(rest):
                try:
                    usage[key] = float(value) if key == "cost_usd" else int(value)
                except ValueError:
                    continue
            found["usage"] = usage
        elif verb == "result":
            fields = dict(_FIELD.findall(rest))
            found["status"] = fields.get("status")
            found["session"] = fields.get("session") or None
        elif verb == "denied":
            found["denied"].append(rest)
        elif verb == "error":
            found["errors"].append(rest)
    return found
