"""One settings class: FLEET_* environment variables (nested with __), an optional
fleet.toml (FLEET_CONFIG_FILE overrides its path), embedded defaults for everything else."""

from __future__ import annotations

import logging
import hashlib
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_data_dir
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fleet_tui.domain.errors import ConfigError
from fleet_tui.domain.models import RuntimeKind, TaskType, Tier

DEFAULT_CONFIG_FILE = "fleet.toml"


def _split_keys(value: Any) -> Any:
    if value is None:
        return []
    return value.split() if isinstance(value, str) else value


def _check_key(value: SecretStr) -> SecretStr:
    from fleet_tui.domain.webhooks import key_bytes

    key_bytes(value.get_secret_value())  # a whsec_ key must be base64
    return value


# Signing keys for webhooks: one string of space-separated keys (or a list); the first signs,
# all verify, so a key rotates by putting the new one first and dropping the old one later.
SigningKeys = Annotated[list[Annotated[SecretStr, AfterValidator(_check_key)]], NoDecode,
                        BeforeValidator(_split_keys)]


class DatabaseSettings(BaseModel):
    url: SecretStr | None = Field(default=None, description="PostgreSQL URL (may hold a password); unset = embedded server")
    pool_min: int = Field(default=2, ge=1)
    pool_max: int = Field(default=10, ge=1)
    idle_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    statement_timeout_ms: dict[str, int] = Field(
        default_factory=lambda: {"read": 5_000, "write": 10_000, "admin": 60_000}
    )
    app_role: str = Field(default="fleet_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    @model_validator(mode="after")
    def _pool_bounds(self) -> DatabaseSettings:
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min must not exceed pool_max")
        return self


class OperatorSettings(BaseModel):
    """The identity the local faces (UI, CLI) act as."""

    id: str = Field(default="local", pattern=r"^[A-Za-z0-9._@:-]{1,128}$")
    tier: Tier = Tier.SOVEREIGN
    is_admin: bool = True


class GovernorSettings(BaseModel):
    tier_limits: dict[Tier, int] = Field(
        default_factory=lambda: {
            Tier.OBSERVER: 0,
            Tier.PARTICIPANT: 0,
            Tier.BUILDER: 1,
            Tier.ARCHITECT: 3,
            Tier.SOVEREIGN: 10,
        }
    )
    fleet_capacity: int = Field(default=50, ge=1)
    rate_limit: int = Field(default=60, ge=1)  # spawn requests per operator per window
    rate_window_s: float = Field(default=60.0, gt=0)

    @field_validator("tier_limits")
    @classmethod
    def _non_negative(cls, value: dict[Tier, int]) -> dict[Tier, int]:
        for tier, limit in value.items():
            if limit < 0:
                raise ValueError(f"limit for {tier} must be >= 0")
        return value


class WorktreeSettings(BaseModel):
    base_dir: Path | None = Field(default=None, description="unset = <data_dir>/worktrees")
    setup_command: list[str] | None = None
    setup_timeout_s: float = Field(default=300.0, gt=0)
    git_timeout_s: float = Field(default=60.0, gt=0)
    retention_hours: float = Field(default=72.0, ge=0)


class RuntimeSettings(BaseModel):
    @field_validator("docker_mounts")
    @classmethod
    def _mount_shape(cls, value: list[str]) -> list[str]:
        for mount in value:
            parts = mount.split(":")
            if len(parts) not in (2, 3) or not all(p.startswith("/") for p in parts[:2]) \
                    or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise ValueError(f"{mount!r} must be HOST:CONTAINER[:ro|rw] with absolute paths")
        return value

    default: RuntimeKind = RuntimeKind.TMUX
    # None: one of the data directory's own (tmux_socket_for), so that two fleets of one
    # user never see each other's sessions
    tmux_socket: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    docker_image: str = "fleet-agent:latest"
    # per agent profile, the image its containers run (`fleet-tui image build --agent NAME`
    # makes fleet-agent:NAME); a profile not named here runs docker_image
    docker_images: dict[str, str] = Field(default_factory=dict)
    # "allowlist": a container reaches its profile's model endpoints (or the base URL in its
    # environment) through the conductor's proxy and nothing else; "none": no egress at all
    docker_egress: Literal["allowlist", "none"] = "allowlist"
    docker_memory: str = "2g"
    docker_cpus: float = Field(default=2.0, gt=0)
    docker_pids_limit: int = Field(default=256, ge=16)
    docker_network: str = "none"
    docker_user: str = "1000:1000"
    # read-only (or ":rw") binds the agent needs from the host, "HOST:CONTAINER[:ro|rw]"
    docker_mounts: list[str] = Field(default_factory=list)
    stop_grace_s: int = Field(default=30, ge=0)


class MonitorSettings(BaseModel):
    interval_s: float = Field(default=3.0, gt=0)
    lease_ttl_s: float = Field(default=30.0, gt=0)
    claim_slack: int = Field(default=2, ge=0)  # tasks claimed beyond the fair share
    # A spawn still 'spawning' this long after its owner's lease lapsed was interrupted (its
    # owner died or stalled mid-saga). Unset: derived from what a spawn may take (see
    # spawn_bound_s); never shorter than worktree.setup_timeout_s.
    spawn_grace_s: float | None = Field(default=None, gt=0)
    sweep_interval_s: float = Field(default=600.0, gt=0)  # disk sweep of finished worktrees (an ops duty, beside the workers)
    ops_interval_s: float = Field(default=60.0, gt=0)  # dead-letter retries and health snapshots
    log_retention_days: float = Field(default=14.0, gt=0)
    cycle_deadline_s: float = Field(default=60.0, gt=0)
    stall_minutes: float = Field(default=15.0, gt=0)
    timeout_minutes: float = Field(default=120.0, gt=0)


class RetrySettings(BaseModel):
    auto: bool = True
    max_retries: int = Field(default=3, ge=0, le=10)
    base_s: float = Field(default=30.0, ge=0)
    cap_s: float = Field(default=120.0, ge=0)
    capacity_threshold: float = Field(default=0.8, gt=0, le=1)
    # A usage limit waits for its reset without spending a retry, and routing sends no new
    # work to that agent until then. Operators listed here opt out: their usage-limited
    # tasks are retried like any failure, and their routing ignores the pause.
    usage_limit_opt_out: list[str] = Field(default_factory=list, description="operator ids")


class ForgeSettings(BaseModel):
    kind: str = Field(default="local", pattern=r"^(local|github)$")
    ci_command: list[str] | None = None
    ci_timeout_s: float = Field(default=600.0, gt=0)
    gh_budget_per_hour: int = Field(default=1000, ge=1)


class AgentSettings(BaseModel):
    default_profile: str = "demo"
    # task type -> profile name (and optional model)
    routes: dict[TaskType, str] = Field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    prompt_budget_tokens: int = Field(default=8000, ge=1000, description="context budget of a prompt")


class ReviewerSpec(BaseModel):
    """One reviewer of the pipeline: a built-in check, an agent profile run headless on the
    diff, or a hosted model API (its key comes from the secrets provider, never from here)."""

    kind: str = Field(pattern=r"^(builtin|agent|http)$")
    focus: str = Field(default="logic", pattern=r"^[a-z_-]{1,32}$")
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    profile: str | None = None  # agent: the agent profile
    provider: str | None = None  # http: anthropic | openai | gemini
    model: str | None = None  # agent or http
    base_url: str | None = None  # http: a proxy or a test server
    key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    preamble: str = ""  # agent: lines put before the review prompt (e.g. demo instructions)
    timeout_s: float | None = Field(default=None, gt=0)  # one reviewer's run; None = the pipeline's

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}:{self.profile or self.provider or self.focus}:{self.focus}"


def _default_reviewers() -> list[ReviewerSpec]:
    # Three distinct focuses that run here without any API key.
    return [
        ReviewerSpec(kind="builtin", focus="security", name="builtin-security"),
        ReviewerSpec(kind="builtin", focus="logic", name="builtin-logic"),
        ReviewerSpec(kind="agent", focus="architecture", name="demo-architecture", profile="demo",
                     preamble="FLEET-DEMO: review"),
    ]


DONE_CHECKS = ("change_exists", "synced_with_base", "ci_passing", "approvals")


class ReviewSettings(BaseModel):
    enabled: bool = True
    reviewers: list[ReviewerSpec] = Field(default_factory=_default_reviewers, min_length=1, max_length=5)
    timeout_s: float = Field(default=1800.0, gt=0)
    approvals: int = Field(default=2, ge=0, description="approvals the definition of done needs")
    # task type -> the checks of its definition of done (unlisted types: all of DONE_CHECKS)
    done: dict[TaskType, list[str]] = Field(default_factory=dict)
    max_diff_lines: int = Field(default=1500, ge=1)

    @field_validator("done")
    @classmethod
    def _known_checks(cls, value: dict[TaskType, list[str]]) -> dict[TaskType, list[str]]:
        for task_type, checks in value.items():
            unknown = set(checks) - set(DONE_CHECKS)
            if unknown:
                raise ValueError(f"{task_type}: unknown check {sorted(unknown)[0]!r}; known: {', '.join(DONE_CHECKS)}")
        return value


class BudgetSettings(BaseModel):
    """Per-operator credit budget in USD (fleet_operators.credit_budget wins when set)."""

    default_usd: float | None = Field(default=None, ge=0, description="unset = no limit")
    # cost assumed for a run of an (agent, model) with no recorded cost yet
    default_run_estimate_usd: float = Field(default=0.0, ge=0)


class NotificationSettings(BaseModel):
    discord_webhook_url: SecretStr | None = None  # the URL carries the webhook's token
    telegram_bot_token: SecretStr | None = None
    telegram_chat_id: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    max_attempts: int = Field(default=4, ge=1)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_cap_s: float = Field(default=30.0, ge=0)


class OutboxSettings(BaseModel):
    """The outbox relay (NOTIFY for faces, NATS, webhooks) and the notification worker."""

    nats_url: SecretStr | None = Field(  # may carry user:password
        default=None, description="e.g. nats://127.0.0.1:4222; unset = no NATS")
    nats_stream: str | None = Field(default=None, description="JetStream stream to publish through (acked, deduped)")
    webhook_urls: list[SecretStr] = Field(default_factory=list)  # URLs often carry a token
    webhook_secret: SigningKeys = Field(
        default_factory=list, description="Standard Webhooks signing keys (space-separated; the first is current)")
    notify_channel: str = Field(default="fleet_events", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    poll_s: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=200, ge=1, le=5000)
    lease_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=20, ge=1)
    crash_limit: int = Field(default=3, ge=1)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_cap_s: float = Field(default=300.0, ge=0)


class ApiSettings(BaseModel):
    listen: str = Field(default="127.0.0.1:8765", pattern=r"^[^:\s]+:\d{1,5}$")
    issuer: str = "fleet-tui"
    audience: str = "fleet-tui"
    key_rollover_s: float = Field(default=24 * 3600.0, ge=0, le=30 * 24 * 3600,
                                  description="how long a rotated-out signing key still verifies")
    max_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60, le=366 * 24 * 3600,
                                 description="longest token lifetime (exp - iat) accepted, and minted")
    events_secret: SigningKeys = Field(
        default_factory=list,
        description="Standard Webhooks keys that may sign POST /api/events (space-separated); unset = refused")
    events_tolerance_s: float = Field(default=300.0, gt=0, le=3600,
                                      description="how far webhook-timestamp may lie from now")
    # On SIGTERM, requests already received may finish within this; unset: as long as a
    # spawn may take (see spawn_bound_s), since a spawn request runs the whole saga.
    drain_grace_s: float | None = Field(default=None, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEET_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("fleet-tui")))
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    operator: OperatorSettings = Field(default_factory=OperatorSettings)
    governor: GovernorSettings = Field(default_factory=GovernorSettings)
    worktree: WorktreeSettings = Field(default_factory=WorktreeSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    forge: ForgeSettings = Field(default_factory=ForgeSettings)
    agents: AgentSettings = Field(default_factory=AgentSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    keymap: dict[str, str] = Field(default_factory=dict)
    log_json: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("FLEET_CONFIG_FILE", DEFAULT_CONFIG_FILE)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _own_tmux_socket(self) -> Settings:
        if self.runtime.tmux_socket is None:
            self.runtime.tmux_socket = tmux_socket_for(self.data_dir)
        return self

    @property
    def tmux_socket(self) -> str:
        """The fleet's tmux socket: as configured, else the data directory's own (which the
        validator above has already filled in; typed here as never None)."""
        return self.runtime.tmux_socket or tmux_socket_for(self.data_dir)

    @model_validator(mode="after")
    def _derived_graces(self) -> Settings:
        """Grace periods follow the timeouts they guard, and say so in the effective config."""
        floor = self.worktree.setup_timeout_s
        if self.monitor.spawn_grace_s is not None and self.monitor.spawn_grace_s < floor:
            logging.getLogger(__name__).warning(
                "monitor.spawn_grace_s %gs is shorter than worktree.setup_timeout_s %gs (a setup may "
                "take that long); using %gs", self.monitor.spawn_grace_s, floor, floor)
        self.monitor.spawn_grace_s = spawn_grace_s(self)
        self.api.drain_grace_s = drain_grace_s(self)
        return self

    @property
    def worktree_base(self) -> Path:
        return (self.worktree.base_dir or self.data_dir / "worktrees").resolve()

    @property
    def database_url(self) -> str | None:
        # DATABASE_URL is honoured as the conventional name; FLEET_DATABASE__URL wins.
        url = self.database.url.get_secret_value() if self.database.url is not None else None
        return url or os.environ.get("DATABASE_URL") or None


def tmux_socket_for(data_dir: Path) -> str:
    """The tmux socket (-L name) of the fleet kept in data_dir: stable, and different for
    every data directory."""
    digest = hashlib.sha256(str(data_dir.expanduser().resolve()).encode()).hexdigest()[:12]
    return f"fleet-{digest}"


SPAWN_MARGIN_S = 30.0  # tmux or docker start, hooks, the database writes of a spawn


def spawn_bound_s(settings: Settings) -> float:
    """How long a healthy spawn may take: worktree add (a git call), the repository's setup
    command, then starting the agent."""
    return settings.worktree.git_timeout_s + settings.worktree.setup_timeout_s + SPAWN_MARGIN_S


def spawn_grace_s(settings: Settings) -> float:
    """The effective spawn grace: configured or derived, never under setup_timeout_s."""
    configured = settings.monitor.spawn_grace_s
    return max(configured if configured is not None else spawn_bound_s(settings),
               settings.worktree.setup_timeout_s)


def drain_grace_s(settings: Settings) -> float:
    configured = settings.api.drain_grace_s
    return configured if configured is not None else spawn_bound_s(settings)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "settings"
        lines.append(f"{field}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's errors into one ConfigError naming each field."""
    config_file = os.environ.get("FLEET_CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"FLEET_CONFIG_FILE: no such file {config_file}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file or DEFAULT_CONFIG_FILE}: is not valid TOML ({exc})") from None
    except OSError as exc:  # the file exists but cannot be read
        raise ConfigError(f"{config_file or DEFAULT_CONFIG_FILE}: cannot be read ({exc.strerror})") from None
