"""The image plan reads its pins from the profiles; egress endpoints and listeners; the
allow-list proxy over a real unix socket."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from fleet_tui.infra.agent_image import IMAGE_AGENTS, ImageBuildError, plan_image
from fleet_tui.infra.agents import builtin_profiles, load_profiles
from fleet_tui.infra.egress import EgressProxy, Endpoint, endpoints_for, forwards_for

AGENT_CLIS = Path(__file__).resolve().parents[2] / "scripts" / "agent-clis"


def _version(spec: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.split(r"@|==", spec)[-1].split("."))


def _in_range(version: tuple[int, ...], proven: str) -> bool:
    checks = {">=": lambda a, b: a >= b, "<": lambda a, b: a < b}
    for clause in proven.split(","):
        op = ">=" if clause.startswith(">=") else "<"
        bound = tuple(int(p) for p in clause.removeprefix(op).split("."))
        if not checks[op](version[:len(bound)] if op == "<" else version, bound):
            return False
    return True


def test_each_image_agent_pins_a_version_inside_the_range_it_was_proven_on() -> None:
    profiles = builtin_profiles()
    for name in IMAGE_AGENTS:
        own = [p for p in profiles[name].packages if "node@" not in p]
        assert own and all(_in_range(_version(p), profiles[name].proven_versions) for p in own), name


def test_the_host_cli_installer_installs_the_profiles_pins() -> None:
    """scripts/agent-clis (the contract tests' CLIs) and the images install the same versions."""
    script = AGENT_CLIS.read_text()
    pins = dict(re.findall(r"^([A-Z]+)_PIN=([\d.]+)", script, re.MULTILINE))
    packages = {p for profile in builtin_profiles().values() for p in profile.packages}
    assert f"npm:@anthropic-ai/claude-code@{pins['CLAUDE']}" in packages
    assert f"npm:@openai/codex@{pins['CODEX']}" in packages
    assert f"npm:@google/gemini-cli@{pins['GEMINI']}" in packages
    assert f"npm:opencode-ai@{pins['OPENCODE']}" in packages
    assert f"pypi:aider-chat=={pins['AIDER']}" in packages
    assert f"npm:node@{pins['NODE']}" in packages


def test_plan_dedupes_node_and_names_bad_input() -> None:
    plan = plan_image(builtin_profiles(), "all", None)
    assert plan.tag == "fleet-agent:all" and plan.packages.count("npm:node@22.23.3") == 1
    assert plan_image(builtin_profiles(), "claude", "mybase:1").base == "mybase:1"
    with pytest.raises(ImageBuildError, match="--agent: must be one of") as bad:
        plan_image(builtin_profiles(), "demo", None)
    assert bad.value.exit_code == 2
    emptied = load_profiles({"codex": {"packages": []}})
    with pytest.raises(ImageBuildError, match=r"agents.profiles.codex.packages"):
        plan_image(emptied, "codex", None)


def test_a_profile_override_changes_what_is_installed() -> None:
    changed = load_profiles({"claude": {"packages": ["npm:@anthropic-ai/claude-code@2.1.400"]}})
    assert plan_image(changed, "claude", None).packages == ("npm:@anthropic-ai/claude-code@2.1.400",)


def test_a_base_url_replaces_the_profiles_endpoints() -> None:
    assert endpoints_for(["api.anthropic.com:443"], {}) == [Endpoint("api.anthropic.com", 443)]
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8123/v1", "ANTHROPIC_API_KEY": "k"}
    assert endpoints_for(["api.anthropic.com:443"], env) == [Endpoint("127.0.0.1", 8123)]
    assert endpoints_for([], {"OPENAI_API_BASE": "https://Gateway.example"}) == [Endpoint("gateway.example", 443)]


def test_named_hosts_get_their_own_loopback_address_and_loopback_stays_itself() -> None:
    forwards, hosts = forwards_for([Endpoint("api.anthropic.com", 443), Endpoint("api.openai.com", 443),
                                    Endpoint("127.0.0.1", 8123), Endpoint("localhost", 9000)])
    assert hosts == {"api.anthropic.com": "127.0.0.10", "api.openai.com": "127.0.0.11"}
    assert [f.listen_host for f in forwards] == ["127.0.0.10", "127.0.0.11", "127.0.0.1", "127.0.0.1"]


async def test_the_proxy_connects_only_to_its_allow_list() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    allowed = await asyncio.start_server(echo, "127.0.0.1", 0)
    refused = await asyncio.start_server(echo, "127.0.0.1", 0)
    port, other = allowed.sockets[0].getsockname()[1], refused.sockets[0].getsockname()[1]
    proxy = EgressProxy("t1", [Endpoint("127.0.0.1", port)])
    await proxy.start()
    try:
        async def ask(target: str, head: bytes | None = None) -> bytes:
            reader, writer = await asyncio.open_unix_connection(str(proxy.path))
            writer.write(head or f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
            writer.write(b"ping")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer

        assert (await ask(f"127.0.0.1:{port}")).endswith(b"\r\n\r\nping")
        assert b" 403 " in await ask(f"127.0.0.1:{other}")
        assert b" 403 " in await ask("", b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n")
        assert oct(proxy.path.stat().st_mode & 0o777) == "0o666"
    finally:
        await proxy.close()
        allowed.close()
        refused.close()
    assert not proxy.dir.exists()
