"""Agent images: a local base, the pinned agent CLIs staged on the host, one `docker build`.

There is no registry to pull from, so everything is made here:

- The base (default ``fleet-debian-slim:bookworm``) is a Debian minbase with git,
  ca-certificates and python3 (the launcher, which renders the CLIs' JSON streams and
  forwards egress, is Python), made by mmdebstrap and loaded with ``docker import``. A
  user may name any local image with ``--base``; it must provide git, python3 and /bin/sh.
- The CLIs are installed on the host, where the package clients are set up (npm, pip: their
  registries, proxies and certificates), into a staging dir: ``npm install`` for the npm
  packages, ``pip install --target`` for aider. Their versions are the profiles' ``packages``
  (the versions the contract tests passed on: one source of truth).
- The Dockerfile (infra/image/Dockerfile) copies the staged tree to /opt/fleet, puts
  /opt/fleet/bin first on PATH and runs as uid 1000. It has no RUN step.

Cache: the image carries the label fleet.recipe = a hash of the Dockerfile, the packages
and the base's image id; a build whose hash matches the existing image returns at once.
A staged tree is kept under the cache dir by the same hash until its image is built (a
failed docker build does not stage again). Heavy steps run niced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Mapping

from fleet_tui.domain.errors import ImageBuildError as ImageBuildError  # in the error catalogue

RECIPE_DIR = Path(__file__).with_name("image")
DOCKERFILE = RECIPE_DIR / "Dockerfile"
BASE_HOOK = RECIPE_DIR / "base-hook.sh"
DEFAULT_BASE = "fleet-debian-slim:bookworm"
BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("git", "ca-certificates", "python3")
IMAGE_REPOSITORY = "fleet-agent"
IMAGE_AGENTS = ("claude", "codex", "gemini", "aider", "opencode")
RECIPE_LABEL = "fleet.recipe"
NICE = ["nice", "-n", "10"]
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 6  # a tool the build needs is missing: the engine, mmdebstrap, npm

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImagePlan:
    agents: tuple[str, ...]
    packages: tuple[str, ...]  # "npm:NAME@V" / "pypi:NAME==V", deduplicated, in order
    base: str
    tag: str

    def recipe_hash(self, base_id: str) -> str:
        digest = hashlib.sha256()
        digest.update(DOCKERFILE.read_bytes())
        digest.update(json.dumps([self.packages, base_id]).encode())
        return digest.hexdigest()[:16]


def image_tag(agent: str) -> str:
    """Where `image build --agent AGENT` puts its image; `all` also tags :latest."""
    return f"{IMAGE_REPOSITORY}:{agent}"


def plan_image(profiles: Mapping[str, Any], agent: str, base: str | None) -> ImagePlan:
    """What to build for --agent (one of IMAGE_AGENTS or "all"); ValidationFailed-like
    errors name the field."""
    if agent == "all":
        agents: tuple[str, ...] = IMAGE_AGENTS
    elif agent in IMAGE_AGENTS:
        agents = (agent,)
    else:
        raise ImageBuildError(f"--agent: must be one of {', '.join(IMAGE_AGENTS)} or all, not {agent!r}", 2)
    packages: list[str] = []
    for name in agents:
        profile = profiles.get(name)
        if profile is None or not profile.packages:
            raise ImageBuildError(f"agents.profiles.{name}.packages: empty; nothing to install for {name}", 2)
        packages += [p for p in profile.packages if p not in packages]
    return ImagePlan(agents=agents, packages=tuple(packages), base=base or DEFAULT_BASE, tag=image_tag(agent))


# --- the engine ---------------------------------------------------------------------------

def docker_client() -> Any:
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
        return client
    except DockerException as exc:
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        raise ImageBuildError(f"the Docker engine at {where} is unreachable ({exc}); start it",
                              EXIT_UNAVAILABLE) from None


def _image_attrs(client: Any, name: str) -> dict[str, Any] | None:
    from docker.errors import ImageNotFound

    try:
        attrs: dict[str, Any] = client.images.get(name).attrs
    except ImageNotFound:
        return None
    return attrs


def _image_id(attrs: Mapping[str, Any]) -> str:
    image_id: str = attrs["Id"]
    return image_id


def _labels(attrs: Mapping[str, Any]) -> dict[str, str]:
    return (attrs.get("Config") or {}).get("Labels") or {}


# --- the base -----------------------------------------------------------------------------

def base_recipe_hash() -> str:
    digest = hashlib.sha256(BASE_HOOK.read_bytes())
    digest.update(json.dumps([BASE_SUITE, BASE_PACKAGES]).encode())
    return digest.hexdigest()[:16]


def ensure_base(client: Any, base: str, progress: Progress) -> str:
    """The base's image id, making the default base when it is missing or stale."""
    attrs = _image_attrs(client, base)
    if base != DEFAULT_BASE:
        if attrs is None:
            raise ImageBuildError(f"--base: image {base} not found on the engine (no registry is used:"
                                  " build or load it first)", EXIT_NOT_FOUND)
        return _image_id(attrs)
    wanted = base_recipe_hash()
    if attrs is not None and _labels(attrs).get(RECIPE_LABEL) == wanted:
        progress(f"base {base}: up to date")
        return _image_id(attrs)
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError("mmdebstrap is not installed (apt-get install mmdebstrap); it makes the"
                              f" default base {base}, or name a local image with --base", EXIT_UNAVAILABLE)
    progress(f"base {base}: mmdebstrap {BASE_SUITE} with {', '.join(BASE_PACKAGES)} (about a minute)")
    with tempfile.TemporaryDirectory(prefix="fleet-base-") as work:
        tarball = Path(work) / "rootfs.tar"
        _run([*NICE, "mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
              *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale", "info")),
              f"--customize-hook={BASE_HOOK} \"$1\"", BASE_SUITE, str(tarball), BASE_MIRROR],
             step="mmdebstrap")
        progress(f"base {base}: docker import")
        changes = ["USER 1000:1000", "WORKDIR /workspace", f"LABEL {RECIPE_LABEL}={wanted}",
                   'ENV PATH=/usr/local/bin:/usr/bin:/bin', 'CMD ["/bin/sh"]']
        repository, _, tag = base.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag or "latest",
                                          changes=changes)
    attrs = _image_attrs(client, base)
    if attrs is None:
        raise ImageBuildError(f"docker import of {base} left no image", 1)
    return _image_id(attrs)


# --- staging the CLIs ---------------------------------------------------------------------

def stage(plan: ImagePlan, root: Path, progress: Progress) -> None:
    """The tree copied to /opt/fleet: npm/ (node_modules), py/<name>/ (site-packages), bin/."""
    bin_dir = root / "opt" / "bin"
    bin_dir.mkdir(parents=True)
    npm = [spec.removeprefix("npm:") for spec in plan.packages if spec.startswith("npm:")]
    pypi = [spec.removeprefix("pypi:") for spec in plan.packages if spec.startswith("pypi:")]
    if npm:
        if shutil.which("npm") is None:
            raise ImageBuildError("npm is not installed on this host; it stages the npm agent CLIs", EXIT_UNAVAILABLE)
        progress(f"npm install {' '.join(npm)}")
        env = {**os.environ, "NPM_CONFIG_UPDATE_NOTIFIER": "false", "NPM_CONFIG_FUND": "false",
               "NPM_CONFIG_AUDIT": "false", "DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
        _run([*NICE, "npm", "install", "--silent", "--no-save", "--omit=dev", "--prefix", str(root / "opt" / "npm"),
              *npm], step="npm install", env=env)
        links = root / "opt" / "npm" / "node_modules" / ".bin"
        for tool in sorted(os.listdir(links)):
            (bin_dir / tool).symlink_to(f"../npm/node_modules/.bin/{tool}")
    for spec in pypi:
        name = spec.partition("==")[0]
        progress(f"pip install {spec}")
        target = root / "opt" / "py" / name
        _run([*NICE, "python3", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "--no-compile", "--target", str(target), spec], step="pip install")
        shutil.rmtree(target / "bin", ignore_errors=True)  # scripts with this host's interpreter
        module = name.split("-")[0]  # aider-chat -> aider
        launcher = bin_dir / module
        launcher.write_text(f'#!/bin/sh\nPYTHONPATH=/opt/fleet/py/{name} exec python3 -m {module} "$@"\n')
        launcher.chmod(0o755)
    shutil.copy(DOCKERFILE, root / "Dockerfile")


# --- the build ----------------------------------------------------------------------------

def build_image(plan: ImagePlan, *, cache_dir: Path, progress: Progress, force: bool = False) -> str:
    """Build (or find up to date) the image of the plan; returns its tag."""
    client = docker_client()
    base_id = ensure_base(client, plan.base, progress)
    recipe = plan.recipe_hash(base_id)
    attrs = _image_attrs(client, plan.tag)
    if not force and attrs is not None and _labels(attrs).get(RECIPE_LABEL) == recipe:
        progress(f"{plan.tag}: up to date (recipe {recipe})")
        return plan.tag
    context = cache_dir / f"context-{recipe}"
    if not (context / ".staged").exists():
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        stage(plan, context, progress)
        (context / ".staged").write_text(recipe)
    progress(f"docker build {plan.tag} from {plan.base}")
    _stream_build(client, context, plan, recipe, progress)
    if plan.agents == IMAGE_AGENTS:
        client.images.get(plan.tag).tag(IMAGE_REPOSITORY, "latest")
    _prune_contexts(cache_dir)  # the image is the cache now; a failed build keeps its staging
    return plan.tag


def _stream_build(client: Any, context: Path, plan: ImagePlan, recipe: str, progress: Progress) -> None:
    from docker.errors import APIError

    repository, _, tag = plan.tag.partition(":")
    try:
        for chunk in client.api.build(path=str(context), tag=plan.tag, buildargs={"BASE": plan.base},
                                      labels={RECIPE_LABEL: recipe, "fleet.agents": ",".join(plan.agents)},
                                      rm=True, forcerm=True, decode=True, pull=False):
            if "error" in chunk:
                raise ImageBuildError(f"docker build {plan.tag}: {chunk['error'].strip()}", 1)
            line = (chunk.get("stream") or "").strip()
            if line.startswith("Step "):
                progress(line)
    except APIError as exc:
        raise ImageBuildError(f"docker build {plan.tag}: {exc.explanation or exc}", 1) from None


def _prune_contexts(cache_dir: Path) -> None:
    """Staged trees go once built: each is hundreds of megabytes (2 GB for all)."""
    for old in cache_dir.glob("context-*"):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _run(argv: list[str], *, step: str, env: Mapping[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=dict(env) if env else None)
    if result.returncode != 0:
        tail = _last_line(result.stderr or result.stdout)
        raise ImageBuildError(f"{step} failed (exit {result.returncode}): {tail}", 1)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def default_cache_dir() -> Path:
    if os.environ.get("FLEET_IMAGE_CACHE"):
        return Path(os.environ["FLEET_IMAGE_CACHE"])
    if os.geteuid() == 0 or os.access("/var/cache", os.W_OK):
        return Path("/var/cache/fleet/agent-images")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fleet" / "agent-images"


def installed_versions(client: Any, tag: str, commands: Iterable[list[str]]) -> list[str]:
    """Each version command's first line, run in the image (no network, as an agent runs)."""
    out = []
    for argv in commands:
        raw = client.containers.run(tag, argv, remove=True, network_mode="none", stdout=True, stderr=True)
        out.append(_last_line(raw.decode(errors="replace")))
    return out
