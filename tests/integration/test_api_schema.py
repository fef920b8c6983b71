"""Schemathesis, driven by the app's own OpenAPI document, against the real app on a real
uvicorn over loopback (in this test's event loop, next to the real conductor): thousands of
generated requests (valid and invalid), no server error, every response as documented, and
every secured route refusing a request without its token."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

from fleet_tui.api.server import ApiServer
from fleet_tui.domain.models import Tier
from tests.integration.api_harness import Api, api, new_operator  # noqa: F401 (fixture)

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
])
MAX_EXAMPLES = 300
MIN_REQUESTS = 3000


def schemathesis_cli() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is a test dependency: pip install -e .[test]"
    return found


async def test_generated_requests_meet_the_documented_schema(api: Api, tmp_path: Path) -> None:
    admin = new_operator(Tier.SOVEREIGN, admin=True)
    await api.spawn(admin, "a real task for generated requests to find")
    server = ApiServer(api.app, "127.0.0.1:0")
    await server.start()
    report = tmp_path / "events.ndjson"
    try:
        proc = await asyncio.create_subprocess_exec(
            schemathesis_cli(), "run", f"{server.url}/openapi.json",
            "--checks", CHECKS, "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(MAX_EXAMPLES), "--seed", "20240901", "--workers", "1",
            "--generation-database", "none", "--request-timeout", "30", "--no-color",
            "--header", f"Authorization: {api.auth(admin, ttl_s=900)['Authorization']}",
            "--report", "ndjson", "--report-ndjson-path", str(report),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # schemathesis keeps a .schemathesis/ cache in its working directory
        )
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=170)
    finally:
        await server.drain()
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]  # any failed check fails the run
    statuses = _response_statuses(report)
    assert len(statuses) >= MIN_REQUESTS, (len(statuses), text[-3000:])
    assert [code for code in statuses if code >= 500] == []
    assert {200, 201, 202, 400, 401, 404} <= set(statuses)  # it reached success and refusals


def _response_statuses(report: Path) -> list[int]:
    """The status of every response recorded in the NDJSON event stream."""
    return [int(code) for code in re.findall(r'"response":\{"status_code":(\d+)', report.read_text())]
