"""Agent profiles: shipped defaults, overrides validated by field, argv building, usage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.infra.agents import (
    PROMPT_FILE_TOKEN,
    bind_prompt_file,
    build_argv,
    builtin_profiles,
    load_profiles,
    parse_usage,
    task_env,
    waits_for_input,
)
from fleet_tui.infra.secrets import REDACTED, SecretsProvider, redact

WORK = Path("/w/tree")


def test_builtins_cover_every_shipped_agent() -> None:
    assert set(builtin_profiles()) == {"claude", "codex", "aider", "gemini", "opencode", "custom", "demo"}


def test_demo_argv_runs_the_package_module_with_model_flag() -> None:
    demo = builtin_profiles()["demo"]
    argv = build_argv(demo, model=None, prompt_file=None, workdir=WORK)
    assert argv == [sys.executable, "-m", "fleet_tui.infra.demo_agent", "--model", "demo-small"]
    assert build_argv(demo, model="demo-large", prompt_file=None, workdir=WORK)[-1] == "demo-large"


def test_model_flag_sits_where_the_marker_is() -> None:
    codex = builtin_profiles()["codex"]
    argv = build_argv(codex, model="o4-mini", prompt_file=None, workdir=WORK)
    assert argv[:2] == ["codex", "exec"] and "--full-auto" not in argv  # removed in 0.16x
    assert argv[-3:] == ["--model", "o4-mini", "-"]


def test_codex_sandbox_is_its_own_on_the_host_and_the_container_in_a_container() -> None:
    codex = builtin_profiles()["codex"]
    host = build_argv(codex, model=None, prompt_file=None, workdir=WORK)
    boxed = build_argv(codex, model=None, prompt_file=None, workdir=WORK, in_container=True)
    assert host[host.index("--sandbox") + 1] == "workspace-write"
    assert boxed[boxed.index("--sandbox") + 1] == "danger-full-access"
    resumed = build_argv(codex, model=None, prompt_file=None, workdir=WORK, resume=True, in_container=True)
    assert 'sandbox_mode="danger-full-access"' in resumed and "--sandbox" not in resumed


@pytest.mark.parametrize(("fields", "rule"), [
    ({"container_sandbox": ""}, "needs sandbox and container_sandbox"),
    ({"sandbox": 'x" && y'}, "should match pattern")])
def test_sandbox_values_are_checked(fields: dict[str, str], rule: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_profiles({"codex": fields})
    assert info.value.field.startswith("agents.profiles.codex") and rule in info.value.rule


def test_fixed_environment_names_the_task_where_asked() -> None:
    opencode = builtin_profiles()["opencode"]
    assert task_env(opencode, "t-1")["OPENCODE_DB"] == "fleet-t-1.db"
    assert task_env(load_profiles({"custom": {"env": {"J": '{"a": 1}'}}})["custom"], "t")["J"] == '{"a": 1}'


def test_no_model_drops_the_flag() -> None:
    custom = load_profiles({"custom": {"command": ["my-agent", "--dir", "{workdir}"],
                                       "model_flag": ["-m", "{model}"]}})["custom"]
    assert build_argv(custom, model=None, prompt_file=None, workdir=WORK) == ["my-agent", "--dir", "/w/tree"]


def test_file_profile_keeps_token_until_the_runtime_binds_it() -> None:
    aider = builtin_profiles()["aider"]
    argv = build_argv(aider, model=None, prompt_file=None, workdir=WORK)
    assert PROMPT_FILE_TOKEN in argv
    bound = bind_prompt_file(argv, "/run/prompt.txt")
    assert "/run/prompt.txt" in bound and PROMPT_FILE_TOKEN not in bound
    direct = build_argv(aider, model="opus", prompt_file=Path("/p.txt"), workdir=WORK)
    assert direct[:3] == ["aider", "--message-file", "/p.txt"] and direct[-2:] == ["--model", "opus"]


@pytest.mark.parametrize(("model", "rule"), [("-rf", "not starting with '-'"),
                                             ("$(x)", "letters, digits"),
                                             ("gpt-2", "must be one of")])
def test_bad_models_are_refused(model: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        build_argv(builtin_profiles()["demo"], model=model, prompt_file=None, workdir=WORK)
    assert info.value.field == "model" and rule in info.value.rule


def test_override_merges_field_by_field() -> None:
    profiles = load_profiles({"claude": {"default_model": "opus"}, "mine": {"command": ["x"]}})
    assert profiles["claude"].default_model == "opus"
    assert profiles["claude"].command[0] == "claude"  # untouched fields kept
    assert profiles["mine"].prompt_via == "stdin"


@pytest.mark.parametrize(
    ("override", "field", "rule"),
    [
        ({"demo": {"command": []}}, "agents.profiles.demo.command", "at least 1"),
        ({"demo": {"command": ["{evil}"]}}, "agents.profiles.demo.command", "unknown placeholder"),
        ({"demo": {"prompt_via": "argv"}}, "agents.profiles.demo.prompt_via", "stdin"),
        ({"demo": {"env_allow": ["A B"]}}, "agents.profiles.demo.env_allow", "environment variable"),
        ({"demo": {"waiting_patterns": ["("]}}, "agents.profiles.demo.waiting_patterns", "invalid regex"),
        ({"demo": {"usage_patterns": [r"(?P<tokens>\d+)"]}}, "agents.profiles.demo.usage_patterns", "named groups"),
        ({"x": {"command": ["a"], "prompt_via": "file"}}, "agents.profiles.x", "{prompt_file}"),
        ({"demo": {"colour": "red"}}, "agents.profiles.demo.colour", "Extra inputs"),
        ({"demo": "nope"}, "agents.profiles.demo", "table"),
    ],
)
def test_bad_overrides_name_the_field(override: dict, field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_profiles(override)
    assert info.value.field == field
    assert rule in info.value.rule


def test_usage_is_read_from_each_cli_format() -> None:
    p = builtin_profiles()
    demo = parse_usage(p["demo"], "x\nusage: input_tokens=123 output_tokens=45 cost_usd=0.0012\n")
    assert (demo.input_tokens, demo.output_tokens, demo.cost_usd) == (123, 45, 0.0012)
    claude_json = '{"type":"result","total_cost_usd":0.0421,"usage":{"input_tokens":900,"output_tokens":310}}'
    claude = parse_usage(p["claude"], claude_json)
    assert (claude.input_tokens, claude.output_tokens, claude.cost_usd) == (900, 310, 0.0421)
    aider = parse_usage(p["aider"], "Tokens: 2.3k sent, 150 received. Cost: $0.01 message, $0.05 session.\n"
                                    "Tokens: 4.1k sent, 1,200 received. Cost: $0.02 message, $0.07 session.")
    assert (aider.input_tokens, aider.output_tokens, aider.cost_usd) == (4100, 1200, 0.07)
    codex_events = ('{"type":"thread.started","thread_id":"th-1"}\n'
                    '{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":40,"output_tokens":7}}\n'
                    '{"type":"turn.completed","usage":{"input_tokens":50,"cached_input_tokens":0,"output_tokens":3}}')
    codex = parse_usage(p["codex"], codex_events)  # raw events (a container's log)
    assert (codex.input_tokens, codex.output_tokens, codex.cached_tokens, codex.total_tokens,
            codex.session_id) == (150, 10, 40, 160, "th-1")
    summary = "  assistant: done\n\x1b[2m[fleet] usage input_tokens=5 output_tokens=6 cached_tokens=0 total_tokens=11\x1b[0m\n"
    assert parse_usage(p["gemini"], summary).total_tokens == 11  # the launcher's summary, ANSI stripped
    assert parse_usage(p["demo"], "no figures here") is None
    assert parse_usage(p["gemini"], "anything") is None


def test_waiting_is_detected_only_at_the_tail() -> None:
    demo = builtin_profiles()["demo"]
    assert waits_for_input(demo, "[demo] working\nContinue? [y/N]\n")
    assert not waits_for_input(demo, "Continue? [y/N]\n" + "more output\n" * 10)
    assert not waits_for_input(demo, "[demo] done\n")


def test_secrets_issue_only_allowed_and_audit_names() -> None:
    audit: list[tuple[str, str, list[str]]] = []
    source = {"ANTHROPIC_API_KEY": "sk-ant-very-secret", "OPENAI_API_KEY": "sk-openai", "HOME": "/h"}
    provider = SecretsProvider(source, audit=lambda *entry: audit.append(entry))
    granted = provider.issue(builtin_profiles()["claude"], "t1")
    assert granted == {"ANTHROPIC_API_KEY": "sk-ant-very-secret"}
    assert audit == [("t1", "claude", ["ANTHROPIC_API_KEY"])]
    assert "sk-ant-very-secret" not in repr(audit)
    assert provider.issue(builtin_profiles()["demo"], "t2") == {}
    assert audit[-1] == ("t2", "demo", [])
    line = "token sk-ant-very-secret leaked"
    assert provider.redact_issued(line) == f"token {REDACTED} leaked"
    assert redact("ab cd", ["ab"]) == "ab cd"  # too short to redact safely


def test_opencode_takes_grants_as_its_permission_map() -> None:
    from fleet_tui.infra.agents import grants_env, takes_grants

    opencode = builtin_profiles()["opencode"]
    assert takes_grants(opencode) and grants_env(opencode, []) == {}
    env = grants_env(opencode, ["bash(curl -s x)", "bash(make lint)", "webfetch"])
    assert json.loads(env["OPENCODE_PERMISSION"]) == {"bash": {"curl -s x": "allow", "make lint": "allow"},
                                                      "webfetch": "allow"}
    assert grants_env(builtin_profiles()["claude"], ["Bash(x)"]) == {}  # claude takes them as arguments


def test_opencode_reports_a_rejected_call_as_denied() -> None:
    from fleet_tui.infra.agent_streams import StreamReader

    reader = StreamReader("opencode")  # as opencode-ai 1.18.33 printed it
    reader.feed(json.dumps({"type": "tool_use", "sessionID": "ses_1", "part": {"type": "tool", "tool": "bash", "state": {
        "status": "error", "input": {"command": "curl -s http://x/", "description": "run a command"},
        "error": "The user rejected permission to use this specific tool call."}}}))
    assert "[fleet] denied bash: curl -s http://x/" in reader.summary()
