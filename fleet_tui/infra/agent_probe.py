"""What this machine has of each agent profile, without calling any model: the CLI on PATH,
its version against the range the profile was proven on, whether its --help still lists
the flags the profile passes, and whether credentials are present (names only, never values).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from fleet_tui.infra.agents import AgentProfile

VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
PROBE_TIMEOUT_S = 60.0  # node CLIs take 18 s to say their version on a busy 2-core box
CREDENTIAL_NAME_RE = re.compile(r"(?:API_KEY|AUTH_TOKEN|_TOKEN|USE_BEDROCK|GOOGLE_CLOUD_PROJECT)$")
# Where each CLI keeps its own login, relative to HOME (or its config directory variable).
LOGIN_FILES: dict[str, list[str]] = {
    "claude": [".claude/.credentials.json"],
    "codex": [".codex/auth.json"],
    "gemini": [".gemini/oauth_creds.json"],
    "opencode": [".local/share/opencode/auth.json"],
}
CONFIG_DIR_VARS = {"claude": "CLAUDE_CONFIG_DIR", "codex": "CODEX_HOME"}


@dataclass
class AgentProbe:
    name: str
    program: str
    path: str | None = None
    version: str | None = None
    proven_versions: str = ""
    in_proven_range: bool | None = None  # None: nothing proven, or no version read
    flags_ok: bool | None = None  # None: not probed (not installed, or nothing to check)
    missing_flags: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)  # names of what was found
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_version(text: str) -> tuple[int, ...] | None:
    match = VERSION_RE.search(text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def in_range(version: tuple[int, ...], spec: str) -> bool:
    """Whether version satisfies every clause of '>=2.1.300,<2.2' (missing parts are 0)."""
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           "<": lambda a, b: a < b, "==": lambda a, b: a == b}
    for clause in spec.split(","):
        op = next(o for o in (">=", "<=", "==", ">", "<") if clause.startswith(o))
        bound = tuple(int(p) for p in clause[len(op):].split("."))
        width = max(len(bound), len(version))
        left = version + (0,) * (width - len(version))
        right = bound + (0,) * (width - len(bound))
        if not ops[op](left, right):
            return False
    return True


def _run(argv: list[str], env: Mapping[str, str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, env=dict(env), errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, f"{type(exc).__name__}: {exc}"
    return done.returncode, done.stdout + done.stderr


def credentials_present(profile: AgentProfile, env: Mapping[str, str]) -> list[str]:
    """Names of the credentials this profile would find: key variables it may be given, or
    the CLI's own login file. Values are never read into anything returned."""
    found = [name for name in profile.env_allow if CREDENTIAL_NAME_RE.search(name) and env.get(name)]
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    for relative in LOGIN_FILES.get(profile.name, []):
        base = home
        config_var = CONFIG_DIR_VARS.get(profile.name)
        if config_var and env.get(config_var):
            base = Path(env[config_var])
            relative = relative.split("/", 1)[-1]
        if (base / relative).is_file():
            found.append(f"login:{base / relative}")
    return found


def probe(profile: AgentProfile, env: Mapping[str, str] | None = None) -> AgentProbe:
    """Probe one profile; runs only --version and --help-level commands."""
    env = dict(os.environ if env is None else env)
    program = profile.command[0]
    result = AgentProbe(name=profile.name, program=program, proven_versions=profile.proven_versions)
    if program == "{python}":
        result.path = "(built in)"
        result.flags_ok = True
        return result
    result.path = shutil.which(program, path=env.get("PATH"))
    result.credentials = credentials_present(profile, env)
    if result.path is None:
        result.problems.append(f"{program} is not on PATH")
        return result
    probe_env = {**env, **profile.env}
    if profile.version_command:
        code, output = _run(profile.version_command, probe_env)
        version = parse_version(output) if code == 0 else None
        if version is None:
            result.problems.append(f"{' '.join(profile.version_command)} printed no version")
        else:
            result.version = ".".join(map(str, version))
            if profile.proven_versions:
                result.in_proven_range = in_range(version, profile.proven_versions)
                if not result.in_proven_range:
                    result.problems.append(f"version {result.version} is outside the proven range "
                                           f"{profile.proven_versions}")
    if profile.help_command and profile.required_flags:
        code, output = _run(profile.help_command, probe_env)
        result.missing_flags = [flag for flag in profile.required_flags if flag not in output]
        result.flags_ok = not result.missing_flags
        if result.missing_flags:
            result.problems.append("--help no longer lists " + ", ".join(result.missing_flags))
    return result
