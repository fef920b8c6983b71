"""The governor's authority under contention: one fleet-wide admission lock,
so no burst of requests, from one process or several, ever exceeds the tier limit."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from fleet_tui.config import GovernorSettings
from fleet_tui.domain.errors import SpawnDeniedError
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.engine.spawn.governor import Governor
from fleet_tui.store.tasks import TaskRegistry

ARCHITECT_LIMIT = 3


def fields(n: int) -> dict[str, Any]:
    return dict(description=f"burst task {n}", repo="/tmp/repo", base_branch="main",
                task_type="feature", idempotency_key=f"burst-{n}")


async def burst(governor: Governor, op: Operator, size: int) -> tuple[int, list[BaseException]]:
    results = await asyncio.gather(*(governor.admit(op, **fields(n)) for n in range(size)),
                                   return_exceptions=True)
    admitted = sum(1 for r in results if isinstance(r, tuple) and r[1])
    refusals = [r for r in results if isinstance(r, BaseException)]
    return admitted, refusals


async def test_200_concurrent_admissions_admit_exactly_the_limit_20_times(registry: TaskRegistry) -> None:
    governor = Governor(registry, GovernorSettings(fleet_capacity=10**6))
    for _ in range(20):
        op = Operator(id=f"arch-{uuid.uuid4().hex[:8]}", tier=Tier.ARCHITECT)
        admitted, refusals = await burst(governor, op, 200)
        assert admitted == ARCHITECT_LIMIT
        assert len(refusals) == 200 - ARCHITECT_LIMIT
        assert all(isinstance(r, SpawnDeniedError) for r in refusals), {type(r) for r in refusals}
        assert "architect limit is 3" in str(refusals[0])
        assert await registry.count_active(op.id) == ARCHITECT_LIMIT
    assert governor.denials == 20 * (200 - ARCHITECT_LIMIT)


WORKER = """
import asyncio, json, sys
from fleet_tui.config import GovernorSettings
from fleet_tui.domain.errors import SpawnDeniedError
from fleet_tui.domain.models import Operator
from fleet_tui.engine.spawn.governor import Governor
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry
from tests.fixtures.db import settings_for
from pathlib import Path

async def main(url, data, op_id, proc):
    db = await Database.open(settings_for(url, Path(data)))
    governor = Governor(TaskRegistry(db), GovernorSettings(fleet_capacity=10**6))
    op = Operator(id=op_id, tier="architect")
    async def one(n):
        try:
            _, created = await governor.admit(op, description=f"p{proc} t{n}", repo="/r",
                base_branch="main", task_type="feature", idempotency_key=f"p{proc}-{n}")
            return created
        except SpawnDeniedError:
            return False
    results = await asyncio.gather(*(one(n) for n in range(70)))
    await db.close()
    print(json.dumps(sum(results)))

asyncio.run(main(*sys.argv[1:5]))
"""


async def test_three_processes_at_once_never_exceed_the_limit(
        registry: TaskRegistry, db_settings: Any, tmp_path: Path) -> None:
    op_id = f"arch-{uuid.uuid4().hex[:8]}"
    root = Path(__file__).resolve().parents[2]
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, db_settings.database_url, str(tmp_path / f"d{i}"), op_id, str(i),
        cwd=root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for i in range(3)]
    peak = 0
    while any(p.returncode is None for p in procs):
        peak = max(peak, await registry.count_active(op_id))
        await asyncio.sleep(0.01)
    outputs = [await p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-500:] for o in outputs]
    admitted = sum(json.loads(out.decode()) for out, _ in outputs)
    assert admitted == ARCHITECT_LIMIT
    assert peak <= ARCHITECT_LIMIT
    assert await registry.count_active(op_id) == ARCHITECT_LIMIT
