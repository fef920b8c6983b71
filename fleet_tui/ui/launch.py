"""`fleet-tui` with no arguments: find the repository to work on (or make a demo one) and
run the control room. Runs before the event loop starts, so plain subprocesses are fine."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fleet_tui.config import Settings

LOG_NAME = "control-room.log"  # under <data_dir>/logs, beside the agents' logs
GIT_ID = ["-c", "user.name=fleet-tui", "-c", "user.email=fleet-tui@localhost"]


def current_repo(cwd: Path) -> Path | None:
    out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True)
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def demo_repo(data_dir: Path) -> Path:
    """A small repository for the demo agent to change, made once under data_dir."""
    path = data_dir / "demo-repo"
    if (path / ".git").is_dir():
        return path
    path.mkdir(parents=True, exist_ok=True)
    (path / "README.md").write_text("# fleet-tui demo repository\n\nAgents change this repository.\n")
    (path / "app.py").write_text("def greet(name: str) -> str:\n    return f'hello {name}'\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "demo repository"]):
        subprocess.run(["git", *GIT_ID, *args], cwd=path, check=True, capture_output=True)
    return path


def choose_repo(settings: Settings, cwd: Path) -> tuple[Path, str]:
    """(repository, banner line): the current git repository, else the demo one, said so."""
    repo = current_repo(cwd)
    if repo is not None:
        return repo, ""
    made = demo_repo(settings.data_dir)
    return made, f"{cwd} is not a git repository: new tasks default to the demo repository {made}"


def observer_banner(database_url: str) -> str:
    from fleet_tui.engine.observer.observer import fleet_address

    return f"observing the fleet at {fleet_address(database_url)} (conductor runs elsewhere)"


def run(settings: Settings, cwd: Path | None = None, *, observe: bool = False) -> int:
    from fleet_tui.engine.ledger.tracing import log_to_file
    from fleet_tui.ui.app import make_app

    # the engine's modules load inside the app, after its first frame (app.import_engine_here)
    log_path = log_to_file(settings.data_dir / "logs" / LOG_NAME)

    if observe:
        # no demo repository: a spawn's repo is a path on the conductor's host
        repo = current_repo(cwd or Path.cwd())
        make_app(settings, repo=str(repo or ""), banner=observer_banner(settings.database_url or ""),
                 observe=True, log_path=log_path).run()
        return 0
    repo, banner = choose_repo(settings, cwd or Path.cwd())
    if settings.database_url is None:
        banner = (banner + " │ " if banner else "") + "database: embedded PostgreSQL under " + str(settings.data_dir)
    make_app(settings, repo=str(repo), banner=banner, log_path=log_path).run()
    return 0
