"""Started with the workers, the scheduled duties run: health snapshots, log lines in
fleet_logs, the disk sweep, and they stop with the workers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fleet_tui.engine.session import start_workers


async def test_workers_take_health_snapshots_and_batch_logs(make_conductor: Any) -> None:
    conductor = await make_conductor(monitor__ops_interval_s=0.2)
    workers = start_workers(conductor)
    try:
        logging.getLogger("fleet.test").warning("a line for fleet_logs")
        for _ in range(100):
            async with conductor.parts.db.system() as conn:
                snapshots = await conn.fetchval("SELECT count(*) FROM fleet_health_snapshots")
                logs = await conn.fetchval("SELECT count(*) FROM fleet_logs WHERE message LIKE 'a line for%'")
            if snapshots >= 2 and logs >= 1:
                break
            await asyncio.sleep(0.1)
        assert snapshots >= 2 and logs == 1
    finally:
        await workers.stop()
    assert workers.ops is not None and workers.ops.done()


async def test_the_disk_sweep_is_a_duty_of_the_workers_on_its_own_period(make_conductor: Any) -> None:
    conductor = await make_conductor(monitor__ops_interval_s=0.2, monitor__sweep_interval_s=0.3)
    real_sweep, sweeps = conductor.sweep, []

    async def counted() -> Any:
        sweeps.append(asyncio.get_running_loop().time())
        return await real_sweep()

    conductor.sweep = counted
    started = asyncio.get_running_loop().time()
    workers = start_workers(conductor)
    try:
        for _ in range(100):
            if len(sweeps) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await workers.stop()
    assert len(sweeps) >= 2
    assert sweeps[0] - started >= 0.25  # the first one a period after the start, not at once
    assert workers.ops is not None and workers.ops.done()
    after = len(sweeps)
    await asyncio.sleep(0.4)
    assert len(sweeps) == after  # stopped with the workers
