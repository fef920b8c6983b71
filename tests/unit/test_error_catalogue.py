"""The error catalogue (domain/errors.py) is the only mapping of errors to the faces: every
FleetError subclass, found by walking the package (a new error cannot be left out), answers
through the real API app with its catalogue status (never the generic 500), through the CLI
with its catalogue exit code and one line on stderr, and through the UI's notice."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest

import fleet_tui
from fleet_tui import cli
from fleet_tui.api.app import create_app
from fleet_tui.engine.kit.tokens import mint
from fleet_tui.engine.kit.keys import KeyStore
from fleet_tui.domain import errors
from fleet_tui.domain.commands import describe_error, rebuild_error
from fleet_tui.domain.errors import FleetError, SpawnErrorCode, face_of
from fleet_tui.domain.models import Tier
from fleet_tui.ui.notices import admission_line, error_notice
from tests.fixtures.engine import operator
from tests.ui.seeded import SeededConductor

DOCUMENTED_HTTP = {400, 401, 403, 404, 409, 503}  # SPEC's, and the OpenAPI document's
DOCUMENTED_EXIT = {2, 3, 4, 5}  # README's: bad input, not found, refused, conflict
IMAGE_BUILD_EXIT = {1, 2, 3, 6}  # `fleet-tui image build`'s own, documented with its verb
EXAMPLE = {str: "example", int: 1, float: 1.0, list: [], bool: False}


def every_fleet_error() -> list[type[FleetError]]:
    for module in pkgutil.walk_packages(fleet_tui.__path__, f"{fleet_tui.__name__}."):
        if not module.name.endswith(".__main__"):  # runs the CLI
            importlib.import_module(module.name)
    found: list[type[FleetError]] = []
    todo = [FleetError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("fleet_tui.") and cls not in found:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


def instance(cls: type[FleetError]) -> FleetError:
    """The error built from example values of its constructor's annotated parameters."""
    hints = typing.get_type_hints(cls.__init__)
    args: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.default is not param.empty or param.kind in (param.VAR_POSITIONAL,
                                                                                param.VAR_KEYWORD):
            continue
        hint = hints.get(name, str)
        if hint == SpawnErrorCode | str:
            args[name] = SpawnErrorCode.TIMEOUT
        else:
            kinds = typing.get_args(hint) or (typing.get_origin(hint) or hint,)
            args[name] = EXAMPLE[next(k for k in kinds if k in EXAMPLE)]
    if list(args) == ["args"] or not args:
        return cls(f"example {cls.__name__}")
    positional = [p for p in inspect.signature(cls.__init__).parameters.values()
                  if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != "self" and p.name in args]
    values = [args.pop(p.name) for p in positional]
    return cls(*values, **args)


ERRORS = every_fleet_error()


def test_the_walk_finds_errors_of_every_room() -> None:
    names = {cls.__name__ for cls in ERRORS}
    assert {"BudgetRefused", "RefusedError", "ValidationFailed", "NoConductorAnswered", "ReviewTimedOut",
            "StepFailed", "DatabaseUnavailableError", "AuthError", "MissingExtraError", "ForgeRateLimited",
            "ImageBuildError", "MigrationEditedError"} <= names
    assert len(ERRORS) >= 25


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_is_in_the_catalogue(cls: type[FleetError]) -> None:
    assert cls.__module__ == errors.__name__, f"{cls.__name__}: define it in domain/errors.py, in the catalogue"
    face = face_of(instance(cls))
    assert face.http_status in DOCUMENTED_HTTP
    assert face.exit_code in (IMAGE_BUILD_EXIT if cls is errors.ImageBuildError else DOCUMENTED_EXIT)
    assert face.severity in ("information", "warning", "error") and face.title


def test_the_documented_answers() -> None:
    def answer(exc: FleetError) -> tuple[int, int, str]:
        face = face_of(exc)
        return face.http_status, face.exit_code, face.title

    assert answer(errors.BudgetRefused("budget refuses every option", task_type="feature", refused=[])) == (403, 4, "denied")
    assert answer(errors.PermissionDeniedError("needs tier builder")) == (403, 4, "denied")
    assert answer(errors.ValidationFailed("repo", "no such directory")) == (400, 2, "invalid")
    assert answer(errors.NotFoundError("task", "t1")) == (404, 3, "not found")
    assert answer(errors.TaskLiveError("live")) == (409, 5, "conflict")
    assert answer(errors.RuntimeUnavailableError("docker", "down")) == (503, 4, "unavailable")
    assert answer(errors.ImageMissingError("docker", "no image")) == (409, 4, "no image")
    assert answer(errors.ConfigError("runtime.default: bad")) == (503, 2, "configuration")
    assert face_of(errors.ImageBuildError("npm is not installed", 6)).exit_code == 6


@pytest.fixture
async def api(tmp_path: Path) -> Any:
    """The real app (routes, auth, error handlers) over the seeded fleet, whose status read
    raises the error under test."""
    fleet = SeededConductor()
    keystore = KeyStore(tmp_path / "keys")
    keystore.current()
    app = create_app(fleet, keystore=keystore, settings=fleet.settings)
    op = operator(Tier.BUILDER)
    settings = fleet.settings.api
    token = mint(keystore, operator_id=op.id, tier=op.tier, is_admin=False, ttl_s=600,
                 issuer=settings.issuer, audience=settings.audience)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fleet.test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield fleet, client


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
async def test_the_api_answers_the_catalogue_status(api: Any, cls: type[FleetError]) -> None:
    fleet, client = api
    exc = instance(cls)

    async def status(*_: Any, **__: Any) -> Any:
        raise exc

    fleet.status = status
    answer = await client.get("/api/fleet/status")
    assert answer.status_code == face_of(exc).http_status != 500, answer.text
    assert str(exc) in answer.json()["detail"] and "internal error" not in answer.json()["detail"]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_the_cli_exits_with_the_catalogue_code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                               cls: type[FleetError]) -> None:
    exc = instance(cls)

    def dispatch(_: Any) -> int:
        raise exc

    monkeypatch.setattr(cli, "_dispatch", dispatch)
    assert cli.main([]) == face_of(exc).exit_code
    out, err = capsys.readouterr()
    assert out == "" and err == f"fleet-tui: {exc}\n"


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_the_ui_notice_reads_the_catalogue(cls: type[FleetError]) -> None:
    exc = instance(cls)
    face = face_of(exc)
    notice = error_notice(exc, "retry")
    assert (notice.message, notice.title, notice.severity) == (str(exc), f"retry: {face.title}", face.severity)
    assert admission_line(exc) == f"{face.title}: {exc}"


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_an_error_from_another_hosts_conductor_answers_the_same(cls: type[FleetError]) -> None:
    """An observer's face raises what a conductor raised across the database (commands)."""
    exc = instance(cls)
    kind, message, detail = describe_error(exc)
    rebuilt = rebuild_error(kind, message, json.loads(json.dumps(detail)))
    assert type(rebuilt) is cls and str(rebuilt) == str(exc) and face_of(rebuilt) == face_of(exc)
