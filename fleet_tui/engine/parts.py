"""Everything the conductor drives, built once from Settings: a plain container the
composition root fills, with no behaviour of its own. Each part that does work lives in its
room and takes its collaborators explicitly: the ledger (the one writer of task state), the
notifications beside it, the runtimes, the execution rows, the agent chooser, the prompt's
sources, the review pipeline. Tests build it with real parts and may wrap one of them to
inject a fault."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from fleet_tui.config import Settings
from fleet_tui.domain.models import RuntimeKind, TaskRecord
from fleet_tui.engine.attempts.executions import Executions
from fleet_tui.engine.choice.agent_choice import AgentChooser, profile_named
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.kit.bus import EventBus
from fleet_tui.engine.kit.places import TaskPlaces
from fleet_tui.engine.kit.runtimes import Runtimes
from fleet_tui.engine.ledger.notices import Notifications
from fleet_tui.engine.ledger.task_ledger import TaskLedger
from fleet_tui.engine.ports import ProfileOf
from fleet_tui.engine.spawn.prompting import PromptSources
from fleet_tui.infra.agents import AgentProfile, load_profiles
from fleet_tui.infra.protocols import Forge, Runtime
from fleet_tui.infra.secrets import SecretsProvider
from fleet_tui.infra.worktree import WorktreeManager
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry

if TYPE_CHECKING:  # made only when reviews are switched on
    from fleet_tui.engine.review.pipeline import ReviewPipeline


@dataclass
class EngineParts:
    settings: Settings
    db: Database
    registry: TaskRegistry  # reads; every write is the ledger's
    worktrees: WorktreeManager
    forge: Forge
    runtimes: Runtimes  # where agents run, each made on first use
    bus: EventBus = field(default_factory=EventBus)
    profiles: dict[str, AgentProfile] = field(default_factory=dict)
    secrets: SecretsProvider = field(default_factory=SecretsProvider)
    reviews: ReviewPipeline | None = None  # the configured review pipeline, when switched on
    breakers: BreakerRegistry = field(default_factory=BreakerRegistry)  # per model ("model:<name>")
    # made by build_parts from the parts above (after a test's overrides, so they use its parts)
    profile: ProfileOf = field(init=False)  # the agent profile of a name (None: the default)
    places: TaskPlaces = field(init=False)  # where a task's agent runs and its work lives
    notices: Notifications = field(init=False)
    ledger: TaskLedger = field(init=False)  # the one writer of task state
    executions: Executions = field(init=False)  # closes an attempt's execution row
    agents: AgentChooser = field(init=False)  # which agent and model run a request
    prompting: PromptSources = field(init=False)  # what an agent's launch plan is built from


def build_parts(settings: Settings, db: Database, **overrides: Any) -> EngineParts:
    """The real parts for these settings: local forge or gh, tmux and (lazily) docker.
    overrides: parts to use instead (by field name); what is made from the parts is made
    after them, from the overriding ones."""
    from fleet_tui.infra.forge_local import LocalForge

    data = settings.data_dir
    worktrees = WorktreeManager(
        settings.worktree_base, data / "snapshots", git_timeout_s=settings.worktree.git_timeout_s,
        setup_command=settings.worktree.setup_command, setup_timeout_s=settings.worktree.setup_timeout_s,
    )
    if settings.forge.kind == "github":
        from fleet_tui.engine.kit.call_budget import SharedCallBudget
        from fleet_tui.infra.forge_github import BUDGET_WINDOW_S, GithubForge

        # one budget for the fleet: every conductor's gh calls count against it
        forge: Forge = GithubForge(budget=SharedCallBudget(
            db, "github:calls", settings.forge.gh_budget_per_hour, BUDGET_WINDOW_S))
    else:
        forge = LocalForge(ci_command=settings.forge.ci_command, ci_timeout_s=settings.forge.ci_timeout_s,
                           git_timeout_s=settings.worktree.git_timeout_s, fleet_worktrees=settings.worktree_base)

    def tmux() -> Runtime:
        from fleet_tui.infra.tmux_runtime import TmuxRuntime

        return TmuxRuntime(settings.tmux_socket, data / "logs")

    def docker() -> Runtime:
        from fleet_tui.infra.docker_runtime import DockerRuntime

        return DockerRuntime.from_settings(settings.runtime, log_dir=data / "logs")

    from fleet_tui.engine.kit.fleet_breakers import SharedBreakerRegistry
    from fleet_tui.engine.review.pipeline import ReviewPipeline

    parts = EngineParts(
        settings=settings, db=db, registry=TaskRegistry(db), worktrees=worktrees, forge=forge,
        runtimes=Runtimes({RuntimeKind.TMUX: tmux, RuntimeKind.DOCKER: docker}),
        profiles=load_profiles(settings.agents.profiles),
        breakers=SharedBreakerRegistry(db),  # the models' breakers are the fleet's
        reviews=ReviewPipeline.from_settings(settings.review) if settings.review.enabled else None,
    )
    for key, value in overrides.items():
        setattr(parts, key, value)
    _make_from_parts(parts, keep=set(overrides))
    return parts


def _make_from_parts(p: EngineParts, *, keep: set[str]) -> None:
    """The parts made from the others (those in keep were given), each from those before it."""
    if "profile" not in keep:
        p.profile = partial(profile_named, p.profiles, p.settings.agents.default_profile)
    if "places" not in keep:
        p.places = TaskPlaces(p.runtimes, p.worktrees)
    if "notices" not in keep:
        p.notices = Notifications(p.db, publish=p.bus.publish)
    if "ledger" not in keep:
        p.ledger = TaskLedger(p.registry, p.db, publish=p.bus.publish,
                              release=partial(_release, p.runtimes), notify=p.notices.notify)
    if "executions" not in keep:
        p.executions = Executions(p.db, profiles=p.profiles, runtime_for=p.runtimes.get, breakers=p.breakers)
    if "agents" not in keep:
        p.agents = AgentChooser(settings=p.settings, db=p.db, profiles=p.profiles, breakers=p.breakers,
                                profile=p.profile, notify_operator=p.notices.notify_operator)
    if "prompting" not in keep:
        p.prompting = PromptSources(settings=p.settings, db=p.db, worktrees=p.worktrees, secrets=p.secrets,
                                    profile=p.profile)


async def _release(runtimes: Runtimes, task: TaskRecord) -> None:
    """What an exited agent left in its runtime (the ledger's move out of running)."""
    await runtimes.release(task.id, task.runtime)
