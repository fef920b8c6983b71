"""Agent profiles: how to run each agent CLI headless, runtime-neutral.

A profile is data (shipped defaults, overridable from settings.agents.profiles). The helpers
here turn a profile into an argument list (the prompt is never in it), read usage/cost from
an agent's output and tell whether the agent sits waiting for input. tmux and docker
runtimes both use them; nothing here knows which runtime runs the agent.

The prompt reaches the agent through stdin or a file. For 'file' profiles the argv keeps a
literal ``{prompt_file}`` token until the runtime, which alone knows where the file lives
(a host path for tmux, a container path for docker), binds it with ``bind_prompt_file``.
"""

from __future__ import annotations

import json
import re
import string
import sys
from pathlib import Path
from typing import Any, Literal
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fleet_tui.domain.errors import ValidationFailed

PROMPT_FILE_TOKEN = "{prompt_file}"
# {python} in a container: the image's interpreter (the conductor's own is not in there)
CONTAINER_PYTHON = "python3"
MODEL_ARGS_TOKEN = "{model_args}"  # an argv element replaced by model_flag (or dropped)
# an argv element replaced by the permission rules an operator granted the task (domain/asks.py),
# one element each, or dropped: where it stands, the CLI reads them as rules it may use unasked
GRANTS_TOKEN = "{granted_tools}"
PLACEHOLDERS = frozenset({"model", "prompt_file", "workdir", "python", "model_args", "test_command",
                          "test_command_json", "granted_tools", "sandbox"})
# An element naming one of these is dropped (with a flag just before it) when the repository
# has no test command; _json is the command escaped for the inside of a JSON string.
TEST_COMMAND_PLACEHOLDERS = frozenset({"test_command", "test_command_json"})
USAGE_GROUPS = frozenset({"input_tokens", "output_tokens", "cached_tokens", "total_tokens", "cost_usd"})
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
PACKAGE_RE = re.compile(r"^(?:npm:(?:@[a-z0-9._-]+/)?[a-z0-9._-]+@\d+(?:\.\d+)*|pypi:[A-Za-z0-9._-]+==\d+(?:\.\d+)*)\Z")
ENDPOINT_RE = re.compile(r"^[A-Za-z0-9.-]{1,253}:\d{1,5}\Z")
VERSION_RANGE_RE = re.compile(r"^(?:(?:>=|<=|<|>|==)\d+(?:\.\d+)*)(?:,(?:>=|<=|<|>|==)\d+(?:\.\d+)*)*\Z")


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    session_id: str | None = None  # the CLI's session, for resume (structured streams only)
    status: str | None = None  # how the CLI said the run ended: ok | error (streams only)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class AgentProfile(BaseModel):
    """How to run one kind of agent CLI non-interactively."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    description: str = ""
    command: list[str] = Field(min_length=1)
    prompt_via: Literal["stdin", "file"] = "stdin"
    model_flag: list[str] = Field(default_factory=list)
    default_model: str | None = None
    models: list[str] = Field(default_factory=list)
    env_allow: list[str] = Field(default_factory=list)
    waiting_patterns: list[str] = Field(default_factory=list)
    auto_answer: str | None = None  # what to type when it waits for input
    answer_automatically: bool = False  # opt-in: type auto_answer without asking anyone
    usage_patterns: list[str] = Field(default_factory=list)
    resume_command: list[str] | None = None
    # The CLI commits each edit itself (aider does): the prompt does not ask the model to run
    # git commit (it may have no shell). Edits left uncommitted at a clean exit are still
    # committed by the conductor, as for every profile.
    auto_commits: bool = False
    # The JSON event stream the CLI prints (agent_streams.py), rendered by the launcher.
    stream: Literal["claude", "codex", "gemini", "opencode"] | None = None
    # Fixed environment values (telemetry and update checks off, ...): never secrets, which
    # come only from the provider through env_allow. "{task_id}" in a value is the task's id
    # (task_env); any other brace is literal.
    env: dict[str, str] = Field(default_factory=dict)
    version_command: list[str] = Field(default_factory=list)  # prints the CLI's version
    proven_versions: str = ""  # ">=A,<B": the versions the contract tests passed on
    required_flags: list[str] = Field(default_factory=list)  # must appear in `CLI --help`
    help_command: list[str] = Field(default_factory=list)  # where required_flags are looked for
    # What `fleet-tui image build` installs for this agent, pinned to the proven versions:
    # "npm:NAME@VERSION" or "pypi:NAME==VERSION" (infra/agent_image.py).
    packages: list[str] = Field(default_factory=list)
    # Where a container of this agent may connect (host:port) under runtime.docker_egress =
    # "allowlist"; a base URL in the agent's environment replaces them (infra/egress.py).
    egress: list[str] = Field(default_factory=list)
    # What {sandbox} stands for: the CLI's own sandbox on the host, and in a container, where
    # the container is the sandbox (a CLI's sandbox inside it may be unable to start, or keep
    # .git read-only so the agent cannot commit).
    # The variable that carries the rules an operator granted a task, as a permission map
    # {"tool": {"pattern": "allow"}} (opencode's OPENCODE_PERMISSION, merged over its config),
    # for a CLI that takes them there rather than as {granted_tools} arguments.
    grants_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    sandbox: str = Field(default="", pattern=r"^[a-z0-9_-]{0,64}$")
    container_sandbox: str = Field(default="", pattern=r"^[a-z0-9_-]{0,64}$")

    @field_validator("command", "model_flag", "resume_command")
    @classmethod
    def _known_placeholders(cls, value: list[str] | None) -> list[str] | None:
        for element in value or []:
            try:
                unknown = _placeholders(element) - PLACEHOLDERS
            except ValueError:
                raise ValueError(f"malformed placeholder in {element!r}") from None
            if unknown:
                raise ValueError(
                    f"unknown placeholder {{{sorted(unknown)[0]}}}; allowed: "
                    + ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
                )
        return value

    @field_validator("default_model")
    @classmethod
    def _model_shape(cls, value: str | None) -> str | None:
        if value is not None and not MODEL_RE.match(value):
            raise ValueError("must be letters, digits and ._:/- not starting with '-'")
        return value

    @field_validator("env", "env_allow")
    @classmethod
    def _env_names(cls, value: Any) -> Any:  # the fixed values' names, the passed-through names
        for name in value:
            if not ENV_NAME_RE.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value

    @field_validator("packages")
    @classmethod
    def _package_specs(cls, value: list[str]) -> list[str]:
        for spec in value:
            if not PACKAGE_RE.match(spec):
                raise ValueError(f"{spec!r} must be npm:NAME@VERSION or pypi:NAME==VERSION")
        return value

    @field_validator("egress")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for endpoint in value:
            if not ENDPOINT_RE.match(endpoint):
                raise ValueError(f"{endpoint!r} must be HOST:PORT")
        return value

    @field_validator("proven_versions")
    @classmethod
    def _version_range(cls, value: str) -> str:
        if value and not VERSION_RANGE_RE.match(value):
            raise ValueError("must look like '>=1.2.0,<1.3'")
        return value

    @field_validator("waiting_patterns")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
        return value

    @field_validator("usage_patterns")
    @classmethod
    def _usage_regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                groups = set(re.compile(pattern).groupindex)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
            if not groups or groups - USAGE_GROUPS:
                raise ValueError(
                    f"{pattern!r} needs named groups among " + ", ".join(sorted(USAGE_GROUPS))
                )
        return value

    @model_validator(mode="after")
    def _prompt_file_used(self) -> AgentProfile:
        uses_file = any(PROMPT_FILE_TOKEN in e for e in self.command)
        if self.prompt_via == "file" and not uses_file:
            raise ValueError("prompt_via 'file' needs a {prompt_file} element in command")
        if self.prompt_via == "stdin" and uses_file:
            raise ValueError("{prompt_file} in command needs prompt_via 'file'")
        if self.default_model and self.models and self.default_model not in self.models:
            raise ValueError("default_model must be one of models")
        uses_sandbox = any("sandbox" in _placeholders(e) for e in [*self.command, *(self.resume_command or [])])
        if uses_sandbox and not (self.sandbox and self.container_sandbox):
            raise ValueError("{sandbox} in command needs sandbox and container_sandbox")
        return self


# What the claude profile may run without asking: git to record its work and the
# repository's own test command; everything else that would prompt is denied at once
# (--permission-prompts none), and the denial is reported in its result event.
CLAUDE_ALLOWED = ["Bash(git add:*)", "Bash(git commit:*)", "Bash(git status:*)",
                  "Bash(git diff:*)", "Bash(git log:*)"]
# The test command goes through --settings: --allowedTools splits its rules at commas.
CLAUDE_TEST_RULE = ["--settings", '{{"permissions":{{"allow":["Bash({test_command_json}:*)"]}}}}']
# node for the CLIs that are node scripts (codex, gemini); claude and opencode ship binaries
NODE_PACKAGE = "npm:node@22.23.3"
QUIET_NODE = {"DO_NOT_TRACK": "1", "NO_UPDATE_NOTIFIER": "1", "NPM_CONFIG_UPDATE_NOTIFIER": "false"}


def _allowed(rules: list[str]) -> list[str]:
    # one flag, every rule after it: repeating the flag kept none of them (2.1.332); the
    # rules an operator granted the task come last
    return ["--allowedTools", *rules, GRANTS_TOKEN]


def builtin_profiles() -> dict[str, AgentProfile]:
    """Shipped defaults, each proven on the versions it names by the contract tests
    (tests/contract: the real CLI against a loopback fake of its model API). CLIs move fast,
    so every field can be overridden from settings.agents.profiles."""
    profiles = [
        AgentProfile(
            name="claude",
            description="Claude Code in print mode, JSON event stream",
            # `claude -p` reads the prompt from stdin. acceptEdits lets it edit; the allowed
            # rules let it commit and run the tests; nothing else is granted.
            command=["claude", "-p", "--output-format", "stream-json", "--verbose",
                     "--permission-mode", "acceptEdits", "--permission-prompts", "none",
                     *_allowed(CLAUDE_ALLOWED), *CLAUDE_TEST_RULE, MODEL_ARGS_TOKEN],
            model_flag=["--model", "{model}"],
            default_model="sonnet",
            models=["sonnet", "opus", "haiku"],
            env_allow=["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
                       "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CONFIG_DIR"],
            env={**QUIET_NODE, "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
                 "DISABLE_ERROR_REPORTING": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
            stream="claude",
            # the same policy on resume: --continue takes the last session of this worktree
            resume_command=["claude", "-p", "--continue", "--output-format", "stream-json", "--verbose",
                            "--permission-mode", "acceptEdits", "--permission-prompts", "none",
                            *_allowed(CLAUDE_ALLOWED), *CLAUDE_TEST_RULE, MODEL_ARGS_TOKEN],
            version_command=["claude", "--version"],
            proven_versions=">=2.1.300,<2.2",
            packages=["npm:@anthropic-ai/claude-code@2.1.332"],
            egress=["api.anthropic.com:443"],
            help_command=["claude", "--help"],
            required_flags=["--output-format", "--permission-mode", "--permission-prompts",
                            "--allowedTools", "--verbose", "--continue"],
        ),
        AgentProfile(
            name="codex",
            description="OpenAI Codex CLI, exec mode, JSON events",
            # `codex exec -` reads the prompt from stdin. --full-auto is gone (0.16x); on the
            # host its workspace-write sandbox keeps .git read-only, so the conductor commits
            # what codex leaves (monitor); in a container, the container is the sandbox (codex's
            # own needs namespaces, which the container's seccomp profile refuses), so codex
            # commits itself. Approvals off: nobody is there to answer.
            command=["codex", "exec", "--json", "--sandbox", "{sandbox}",
                     "-c", "approval_policy=\"never\"", "-c", "check_for_update_on_startup=false",
                     MODEL_ARGS_TOKEN, "-"],
            model_flag=["--model", "{model}"],
            default_model="gpt-5-codex",
            models=["gpt-5-codex", "gpt-5", "o4-mini"],
            # a base URL needs a provider in codex's config (CODEX_HOME/config.toml)
            env_allow=["OPENAI_API_KEY", "CODEX_HOME"],
            env={**QUIET_NODE, "CODEX_DISABLE_ANALYTICS": "1"},
            stream="codex",
            # resume rejects --sandbox; the -c form of the same policy is accepted
            resume_command=["codex", "exec", "resume", "--last", "--json",
                            "-c", "sandbox_mode=\"{sandbox}\"", "-c", "approval_policy=\"never\"",
                            MODEL_ARGS_TOKEN, "-"],
            sandbox="workspace-write",
            container_sandbox="danger-full-access",
            version_command=["codex", "--version"],
            proven_versions=">=0.169.0,<0.172",
            packages=[NODE_PACKAGE, "npm:@openai/codex@0.171.0"],
            egress=["api.openai.com:443"],
            help_command=["codex", "exec", "--help"],
            required_flags=["--json", "--sandbox", "--config", "--model"],
        ),
        AgentProfile(
            name="aider",
            description="aider with a message file (commits its own edits)",
            # --message-file runs one message and exits. Unattended: no analytics question,
            # no .gitignore edit, no update check.
            command=["aider", "--message-file", PROMPT_FILE_TOKEN, "--yes-always",
                     "--analytics-disable", "--no-gitignore", "--no-check-update",
                     "--no-show-release-notes", "--no-pretty", "--no-stream", "--no-fancy-input",
                     # its chat logs would otherwise land in the worktree (and the change)
                     "--chat-history-file", "/dev/null", "--input-history-file", "/dev/null",
                     MODEL_ARGS_TOKEN],
            prompt_via="file",
            model_flag=["--model", "{model}"],
            default_model="sonnet",
            models=[],  # any model aider knows, provider-prefixed included (openai/..., ollama/...)
            env_allow=["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_API_BASE",
                       "OPENAI_BASE_URL", "DEEPSEEK_API_KEY", "GEMINI_API_KEY", "OLLAMA_API_BASE"],
            env={"AIDER_ANALYTICS": "false", "AIDER_CHECK_UPDATE": "false",
                 "LITELLM_LOCAL_MODEL_COST_MAP": "True"},  # the price map shipped, not fetched
            waiting_patterns=[r"\(Y\)es/\(N\)o", r"\[Yes\]:\s*$"],
            auto_answer="y",
            # "Tokens: 2.3k sent, 150 received. Cost: $0.01 message, $0.05 session."
            usage_patterns=[
                (r"Tokens:\s*(?P<input_tokens>[\d,.]+[kKmM]?) sent,\s*"
                r"(?P<output_tokens>[\d,.]+[kKmM]?) received"),
                r"Cost:\s*\$[\d.]+ message,\s*\$(?P<cost_usd>[\d.]+) session",
            ],
            auto_commits=True,
            version_command=["aider", "--version"],
            proven_versions=">=0.86.0,<0.87",
            packages=["pypi:aider-chat==0.86.2"],
            egress=["api.anthropic.com:443", "api.openai.com:443"],
            help_command=["aider", "--help"],
            required_flags=["--message-file", "--yes-always", "--analytics-disable", "--no-gitignore"],
        ),
        AgentProfile(
            name="gemini",
            description="Gemini CLI, headless, JSON event stream",
            # stdin carries the prompt; --skip-trust, else a fresh worktree exits 55 at once
            # ("not running in a trusted directory") and --yolo is overridden there.
            command=["gemini", "--skip-trust", "--approval-mode", "yolo", "--output-format",
                     "stream-json", MODEL_ARGS_TOKEN],
            model_flag=["--model", "{model}"],
            default_model="gemini-2.5-pro",
            models=["gemini-2.5-pro", "gemini-2.5-flash"],
            env_allow=["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GEMINI_BASE_URL"],
            env={**QUIET_NODE, "GEMINI_TELEMETRY_ENABLED": "false", "GEMINI_CLI_DISABLE_AUTO_UPDATE": "true"},
            stream="gemini",
            version_command=["gemini", "--version"],
            proven_versions=">=0.61.0,<0.62",
            packages=[NODE_PACKAGE, "npm:@google/gemini-cli@0.61.0"],
            egress=["generativelanguage.googleapis.com:443"],
            help_command=["gemini", "--help"],
            required_flags=["--skip-trust", "--approval-mode", "--output-format"],
        ),
        AgentProfile(
            name="opencode",
            description="opencode run, JSON events",
            command=["opencode", "run", "--format", "json", MODEL_ARGS_TOKEN],
            model_flag=["--model", "{model}"],
            default_model=None,
            models=[],  # provider/model, as opencode names them
            env_allow=["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENCODE_CONFIG", "GEMINI_API_KEY"],
            # Each task its own session database, beside the user's (same data dir: logins and
            # settings stay shared): two first-ever runs on one database race on its migration
            # ("Failed query: CREATE TABLE workspace"), and --continue finds this task's session.
            # MODELS_FETCH/LSP_DOWNLOAD: at every start it asked models.opencode.ai for its
            # model list (seen through a recording proxy). Still asked: the npm registry, for
            # the provider package the user's config names (no switch found in 1.18)
            env={**QUIET_NODE, "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_SHARE": "1",
                 "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
                 "OPENCODE_DB": "fleet-{task_id}.db"},
            stream="opencode",
            resume_command=["opencode", "run", "--continue", "--format", "json", MODEL_ARGS_TOKEN],
            grants_env="OPENCODE_PERMISSION",
            version_command=["opencode", "--version"],
            proven_versions=">=1.18.33,<1.19",
            packages=["npm:opencode-ai@1.18.33"],
            egress=["api.anthropic.com:443", "api.openai.com:443", "generativelanguage.googleapis.com:443"],
            help_command=["opencode", "run", "--help"],
            required_flags=["--format", "--model"],
        ),
        AgentProfile(
            name="custom",
            description="Any command reading its prompt on stdin; set command in fleet.toml",
            command=["fleet-agent"],
        ),
        AgentProfile(
            name="demo",
            description="Built-in demo agent: scripted edits and failures, no API key",
            command=["{python}", "-m", "fleet_tui.infra.demo_agent", MODEL_ARGS_TOKEN],
            model_flag=["--model", "{model}"],
            default_model="demo-small",
            models=["demo-small", "demo-large"],
            env_allow=["FLEET_DEMO_MODE"],
            waiting_patterns=[r"Continue\? \[y/N\]"],
            auto_answer="y",
            resume_command=["{python}", "-m", "fleet_tui.infra.demo_agent", "--resume", MODEL_ARGS_TOKEN],
            usage_patterns=[
                (r"usage: input_tokens=(?P<input_tokens>\d+) output_tokens=(?P<output_tokens>\d+)"
                r" cost_usd=(?P<cost_usd>[0-9.]+)")
            ],
        ),
    ]
    return {p.name: p for p in profiles}


def _pydantic_message(exc: ValidationError, prefix: str) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = ".".join(str(part) for part in err["loc"])
    return (f"{prefix}.{loc}" if loc else prefix), err["msg"].removeprefix("Value error, ")


def load_profiles(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, AgentProfile]:
    """Builtins with settings.agents.profiles merged over them field by field.
    A new name makes a new profile. Raises ValidationFailed naming the field."""
    profiles = builtin_profiles()
    for name, fields in (overrides or {}).items():
        prefix = f"agents.profiles.{name}"
        if not isinstance(fields, Mapping):
            raise ValidationFailed(prefix, "must be a table of profile fields")
        base = profiles[name].model_dump() if name in profiles else {}
        merged = {**base, **fields, "name": name}
        try:
            profiles[name] = AgentProfile.model_validate(merged)
        except ValidationError as exc:
            raise ValidationFailed(*_pydantic_message(exc, prefix)) from None
    return profiles


def resolve_model(profile: AgentProfile, model: str | None) -> str | None:
    """The model to run: the one asked for (checked) or the profile's default."""
    if model is None:
        return profile.default_model
    if not MODEL_RE.match(model):
        raise ValidationFailed("model", "must be letters, digits and ._:/- not starting with '-'")
    if profile.models and model not in profile.models:
        raise ValidationFailed(
            "model", f"must be one of {', '.join(profile.models)} for agent {profile.name}"
        )
    return model


def build_argv(
    profile: AgentProfile,
    *,
    model: str | None,
    prompt_file: Path | None,
    workdir: Path,
    resume: bool = False,
    test_command: str = "",
    granted: list[str] | tuple[str, ...] = (),
    in_container: bool = False,
) -> list[str]:
    """The agent's argument list. Without prompt_file, {prompt_file} stays as a token for
    the runtime to bind (see bind_prompt_file). The prompt itself is never in argv.
    test_command (the repository's CI command as one line) fills {test_command}; without
    one, an element naming it is left out, and so is a flag just before it. in_container
    picks the profile's container_sandbox for {sandbox}."""
    chosen = resolve_model(profile, model)
    values = {
        "test_command": test_command,
        "test_command_json": json.dumps(test_command)[1:-1],
        "model": chosen or "",
        "workdir": str(workdir),
        "python": CONTAINER_PYTHON if in_container else sys.executable,
        "prompt_file": str(prompt_file) if prompt_file is not None else PROMPT_FILE_TOKEN,
        "sandbox": profile.container_sandbox if in_container else profile.sandbox,
    }
    model_args = [e.format_map(values) for e in profile.model_flag] if chosen else []
    argv: list[str] = []
    template = profile.resume_command if resume and profile.resume_command else profile.command
    for element in template:
        if not test_command and _placeholders(element) & TEST_COMMAND_PLACEHOLDERS:
            if argv and argv[-1].startswith("--"):
                argv.pop()  # its flag goes with it
            continue
        if element == MODEL_ARGS_TOKEN:
            argv.extend(model_args)
            model_args = []
        elif element == GRANTS_TOKEN:
            argv.extend(granted)
        else:
            argv.append(element.format_map({**values, "model_args": ""}))
    return argv + model_args  # no marker: model flag goes last


def task_env(profile: AgentProfile, task_id: str) -> dict[str, str]:
    """The profile's fixed environment for one task ({task_id} filled in)."""
    return {name: value.replace("{task_id}", task_id) for name, value in profile.env.items()}


def takes_grants(profile: AgentProfile) -> bool:
    """Whether the operator can grant this profile's agent a permission for a task."""
    return GRANTS_TOKEN in profile.command or profile.grants_env is not None


def grants_env(profile: AgentProfile, granted: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The granted rules ("tool(pattern)" or "tool") in the profile's grants variable."""
    if profile.grants_env is None or not granted:
        return {}
    allowed: dict[str, Any] = {}
    for rule in granted:
        tool, _, pattern = rule.partition("(")
        if not pattern:
            allowed[tool] = "allow"
        elif allowed.get(tool) != "allow":
            allowed.setdefault(tool, {})[pattern[:-1]] = "allow"
    return {profile.grants_env: json.dumps(allowed)}


def bind_prompt_file(argv: list[str], prompt_file: Path | str) -> list[str]:
    """Replace the {prompt_file} token with where the runtime put the prompt."""
    return [e.replace(PROMPT_FILE_TOKEN, str(prompt_file)) for e in argv]


def _number(text: str) -> float:
    text = text.replace(",", "").strip()
    scale = {"k": 1e3, "m": 1e6}.get(text[-1:].lower(), 1.0)
    if scale != 1.0:
        text = text[:-1]
    return float(text) * scale


def parse_usage(profile: AgentProfile, text: str) -> Usage | None:
    """Usage/cost from an agent's output (ANSI-stripped first). A streaming profile's figures
    come from the launcher's summary lines, or, where no launcher rendered the stream (a
    container), from the raw events in the text. Otherwise the profile's regexes: the last
    match of each figure wins (CLIs print a running total or a final summary). None when
    nothing was found."""
    from fleet_tui.domain.text import strip_ansi

    text = strip_ansi(text)
    if profile.stream:
        return _stream_usage(profile.stream, text.splitlines())
    found: dict[str, float] = {}
    for pattern in profile.usage_patterns:
        for match in re.finditer(pattern, text):
            for key, value in match.groupdict().items():
                if value is None:
                    continue
                try:
                    found[key] = _number(value)
                except ValueError:
                    continue
    if not found:
        return None
    return Usage(
        **{k: (v if k == "cost_usd" else int(v)) for k, v in found.items()}
    )


def _stream_usage(kind: str, lines: list[str]) -> Usage | None:
    from fleet_tui.infra.agent_streams import StreamReader, parse_summary

    summary = parse_summary(lines)
    if not summary["usage"] and not summary.get("status"):
        reader = StreamReader(kind)
        for line in lines:
            reader.feed(line)
        summary = parse_summary(reader.summary())
        if reader.status is None and not any(reader.usage.values()):
            return None
    usage = summary["usage"]
    return Usage(input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
                 cached_tokens=usage.get("cached_tokens"), total_tokens=usage.get("total_tokens"),
                 cost_usd=usage.get("cost_usd"), session_id=summary.get("session"),
                 status=summary.get("status"))


def waits_for_input(profile: AgentProfile, text: str) -> bool:
    """Whether the tail of the output shows the agent waiting for an answer."""
    from fleet_tui.domain.text import strip_ansi

    tail = "\n".join(strip_ansi(text).rstrip().splitlines()[-5:])  # only the last lines count
    return any(re.search(p, tail, re.MULTILINE) for p in profile.waiting_patterns)
