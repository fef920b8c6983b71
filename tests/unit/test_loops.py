"""The engine's one periodic loop and one background-task supervisor."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fleet_tui.engine.kit.loops import PeriodicLoop
from fleet_tui.engine.kit.polling import PollingWorker
from fleet_tui.engine.kit.supervisor import Supervisor


async def _until(check: object, timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.001)


async def test_runs_never_overlap_and_the_pause_counts_from_completion() -> None:
    inside = 0
    most = 0
    ends: list[float] = []
    starts: list[float] = []

    async def step() -> None:
        nonlocal inside, most
        starts.append(asyncio.get_running_loop().time())
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.03)  # slower than the interval
        inside -= 1
        ends.append(asyncio.get_running_loop().time())

    loop = PeriodicLoop(step, name="t", interval_s=0.01)
    loop.start()
    await _until(lambda: len(ends) >= 3)
    await loop.stop()
    assert most == 1
    for end, next_start in zip(ends, starts[1:], strict=False):
        assert next_start - end >= 0.008  # the interval after the step, not from its start


async def test_wake_runs_the_next_step_at_once() -> None:
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1

    loop = PeriodicLoop(step, name="t", interval_s=3600)
    loop.start()
    await _until(lambda: runs == 1)
    loop.wake()
    await _until(lambda: runs == 2, timeout_s=1.0)
    await loop.stop()


async def test_a_wake_during_a_step_is_not_lost() -> None:
    runs = 0
    loop: PeriodicLoop

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            loop.wake()  # e.g. a NOTIFY arriving while the round reads

    loop = PeriodicLoop(step, name="t", interval_s=3600)
    loop.start()
    await _until(lambda: runs == 2, timeout_s=1.0)
    await loop.stop()


async def test_a_failing_step_is_counted_and_logged_and_the_loop_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    runs = 0
    pauses: list[int] = []

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError(f"boom {runs}")

    def backoff(failures: int) -> float:
        pauses.append(failures)
        return 0.001

    loop = PeriodicLoop(step, name="flaky", interval_s=0.001, backoff=backoff)
    with caplog.at_level(logging.ERROR, logger="fleet_tui.engine.kit.loops"):
        loop.start()
        await _until(lambda: runs >= 4)
        await loop.stop()
    assert loop.errors == 2 and loop.failures_in_a_row == 0
    assert pauses == [1, 2]  # backoff grows with the failures in a row
    assert [r.getMessage() for r in caplog.records] == ["flaky: step failed (1 in a row)",
                                                        "flaky: step failed (2 in a row)"]


async def test_the_step_chooses_its_pause() -> None:
    runs = 0

    async def step() -> float:
        nonlocal runs
        runs += 1
        return 0 if runs < 5 else 3600  # busy: at once; then idle

    loop = PeriodicLoop(step, name="t", interval_s=3600)
    loop.start()
    await _until(lambda: runs == 5, timeout_s=1.0)
    await loop.stop()


async def test_stop_lets_the_step_in_hand_finish_then_ends() -> None:
    started = asyncio.Event()
    finished = False

    async def step() -> None:
        nonlocal finished
        started.set()
        await asyncio.sleep(0.05)
        finished = True

    loop = PeriodicLoop(step, name="t", interval_s=3600)
    loop.start()
    await started.wait()
    await loop.stop(timeout_s=5)
    assert finished and not loop.running


async def test_stop_cancels_a_step_that_overruns_its_timeout() -> None:
    cancelled = False

    async def step() -> None:
        nonlocal cancelled
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled = True
            raise

    loop = PeriodicLoop(step, name="t", interval_s=1)
    loop.start()
    await asyncio.sleep(0.01)
    await loop.stop(timeout_s=0.05)
    assert cancelled and not loop.running


async def test_a_shared_stop_event_ends_an_inline_run() -> None:
    stop = asyncio.Event()
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        stop.set()

    await asyncio.wait_for(PeriodicLoop(step, name="t", interval_s=3600, stop_event=stop).run(), 1.0)
    assert runs == 1


async def test_supervisor_keeps_tasks_and_logs_a_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    sup = Supervisor("test")

    async def fail() -> None:
        raise ValueError("bad input")

    with caplog.at_level(logging.ERROR, logger="fleet_tui.engine.kit.supervisor"):
        task = sup.start(fail(), name="failing")
        assert len(sup) == 1
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # the done-callback runs
    assert len(sup) == 0 and sup.failures == 1
    assert [r.getMessage() for r in caplog.records] == ["test: background failing failed: ValueError: bad input"]


async def test_supervisor_shutdown_waits_then_cancels_and_awaits_the_rest(
        caplog: pytest.LogCaptureFixture) -> None:
    sup = Supervisor("test")
    quick_done = False
    slow_cancelled = False

    async def quick() -> None:
        nonlocal quick_done
        await asyncio.sleep(0.01)
        quick_done = True

    async def slow() -> None:
        nonlocal slow_cancelled
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            slow_cancelled = True
            raise

    sup.start(quick(), name="quick")
    slow_task = sup.start(slow(), name="slow")
    with caplog.at_level(logging.ERROR, logger="fleet_tui.engine.kit.supervisor"):
        await sup.shutdown(timeout_s=0.1)
    assert quick_done and slow_cancelled and slow_task.done() and len(sup) == 0
    assert sup.failures == 0 and not caplog.records  # a cancellation is no failure


async def test_halt_from_inside_the_step_ends_the_loop() -> None:
    runs = 0
    loop: PeriodicLoop

    async def step() -> None:
        nonlocal runs
        runs += 1
        loop.halt()  # e.g. the lease it renews was lost

    loop = PeriodicLoop(step, name="t", interval_s=0.001)
    loop.start()
    await _until(lambda: not loop.running, timeout_s=1.0)
    assert runs == 1


async def test_a_shutdown_without_grace_cancels_at_once_and_quietly(caplog: pytest.LogCaptureFixture) -> None:
    sup = Supervisor("test")
    task = sup.start(asyncio.sleep(3600), name="reader")
    with caplog.at_level(logging.WARNING, logger="fleet_tui.engine.kit.supervisor"):
        await asyncio.wait_for(sup.shutdown(timeout_s=0), 0.5)
    assert task.cancelled() and not caplog.records


class _Stats:
    errors = 0


class _Worker(PollingWorker):
    def __init__(self, fail_first: int = 0) -> None:
        super().__init__()
        self.stats = _Stats()
        self.rounds = 0
        self._fail_first = fail_first

    @property
    def worker_name(self) -> str:
        return "test-worker"

    @property
    def poll_s(self) -> float:
        return 3600.0

    async def run_once(self) -> int:
        self.rounds += 1
        if self.rounds <= self._fail_first:
            raise ConnectionError("database away")
        return 0


async def test_a_polling_worker_without_listen_is_woken_by_poke() -> None:
    worker = _Worker()
    worker.start()
    await _until(lambda: worker.rounds == 1)
    worker.poke()  # the command worker's freed slot: look again at once
    await _until(lambda: worker.rounds == 2, timeout_s=1.0)
    await worker.stop()
    assert not worker.running


async def test_a_polling_worker_counts_a_failed_round_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    worker = _Worker(fail_first=1)
    with caplog.at_level(logging.WARNING, logger="fleet_tui.engine.kit.polling"):
        worker.start()
        await _until(lambda: worker.rounds == 1)
        await asyncio.sleep(0.3)
        assert worker.rounds == 1  # backing off (1 s after the first failure), not spinning
        await _until(lambda: worker.rounds == 2, timeout_s=2.0)
        await worker.stop()
    assert worker.stats.errors == 1
    assert [r.getMessage() for r in caplog.records] == ["test-worker round failed (ConnectionError: database away)"]


async def test_supervisor_keys_name_the_keyed_tasks_still_running() -> None:
    sup = Supervisor("test")
    gate = asyncio.Event()
    first = sup.start(gate.wait(), name="c1", key=1)
    sup.start(asyncio.sleep(0), name="c2", key=2)
    seen_in_callback: list[list[object]] = []
    first.add_done_callback(lambda _t: seen_in_callback.append(sup.keys()))
    await asyncio.sleep(0.01)
    assert sup.keys() == [1] and 1 in sup and 2 not in sup
    gate.set()
    await first
    await asyncio.sleep(0)
    assert sup.keys() == [] and seen_in_callback == [[]]  # gone before the caller's own callback


async def test_a_task_that_ignores_its_cancellation_does_not_hold_shutdown(
        caplog: pytest.LogCaptureFixture) -> None:
    sup = Supervisor("test")

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # records itself very slowly

    task = sup.start(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="fleet_tui.engine.kit.supervisor"):
        await asyncio.wait_for(sup.shutdown(0, cancel_wait_s=0.05), 1.0)
    assert [r.getMessage() for r in caplog.records] == [
        "test: background stubborn did not end within 0.05s of its cancellation"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
