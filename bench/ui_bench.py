"""The control room under load, headless: 1,000 tasks listed (800 finished + 200 live demo
agents printing output), on a real conductor (PostgreSQL, git worktrees, tmux).

    .venv/bin/python bench/ui_bench.py [--live 200] [--finished 800] [--keys 400] [--preview]

Prints:
- keypress-to-frame latency (p50, p99): from Pilot.press until the app is idle again with
  the screen's compositor update done (headless: no terminal write), cursor moving over
  the 1,000-row table while the 200 agents' events stream in;
- lines per second reaching the selected task's log pane (TailLog.received over time);
- CPU (this process: engine + UI) and peak RSS.
With the latency: the main thread's CPU time per key (the loop's own work during the key:
UI and engine) and the share of the machine's CPU time the hypervisor stole meanwhile, so a
slow key can be told apart from a starved one.
With --preview the main screen's preview pane is open (`p`) and each key waits until the
pane has read the newly selected agent's output (its last lines, then its stream) before the
next: every key then pays for a preview switch while the previous one streams.
Targets: p99 <= 50 ms, >= 10k lines/s, RSS <= 200 MB.

Needs PostgreSQL (FLEET_BENCH_DATABASE_URL or postgres@127.0.0.1:5432); makes and drops
its own database and tmux socket.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import os
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleet_tui.domain.models import Operator, SpawnRequest, Tier
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.session import build_conductor
from fleet_tui.engine.session import close_conductor
from fleet_tui.store.db import Database
from fleet_tui.ui.app import make_app
from fleet_tui.ui.screens.detail import DetailScreen
from fleet_tui.ui.widgets.tail_log import TailLog
from tests.fixtures.db import create_database, drop_database, settings_for
from tests.fixtures.gitrepo import make_repo

OWNER_URL = os.environ.get("FLEET_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SELECTED_FLOOD = 400_000
PREVIEW_REST_S = 0.25  # with --preview, after each key: longer than the preview's debounce


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of the machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def idle_ticks() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of the machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


async def settle(busy_below: float = 0.6, within_s: float = 60) -> float:
    """Wait until the agents' start-up floods are through (the machine less than
    busy_below busy over one second); seconds waited. Keys are timed in steady state."""
    started = time.perf_counter()
    while time.perf_counter() - started < within_s:
        idle0, total0 = idle_ticks()
        await asyncio.sleep(1.0)
        idle1, total1 = idle_ticks()
        if 1 - (idle1 - idle0) / max(total1 - total0, 1) < busy_below:
            break
    return time.perf_counter() - started


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def seed(conductor: Conductor, op: Operator, repo: Path, live: int, finished: int) -> str:
    sem = asyncio.Semaphore(16)

    async def spawn(i: int, script: str) -> str:
        async with sem:
            result = await conductor.spawn(op, SpawnRequest(description=f"bench task {i}\n{script}", repo=str(repo)))
            return result.task.id

    async def finished_task(i: int) -> None:
        async with sem:
            task, _ = await conductor.governor.admit(
                op, description=f"finished bench task {i}", repo=str(repo), base_branch="main",
                task_type="feature", agent="demo", model=None, runtime="tmux", priority=50, max_retries=3,
                idempotency_key=f"bench-finished-{i}", branch=None, trace_id=None)
            await conductor.move(task, TaskStatus.CANCELLED, actor="bench", reason="seeded")

    t0 = time.perf_counter()
    await asyncio.gather(*(finished_task(i) for i in range(finished)))
    print(f"seeded {finished} finished tasks in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    selected = await spawn(0, f"FLEET-DEMO: flood {SELECTED_FLOOD}\nFLEET-DEMO: sleep 600")
    # the other agents keep printing: a flood, then a slower trickle from the sleep's neighbours
    await asyncio.gather(*(spawn(i, "FLEET-DEMO: flood 20000\nFLEET-DEMO: sleep 600") for i in range(1, live)))
    print(f"spawned {live} live demo agents in {time.perf_counter() - t0:.1f}s")
    return selected


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="fleet-ui-bench-"))
    url = await create_database(OWNER_URL)
    socket = f"fleet-bench-{uuid.uuid4().hex[:8]}"
    settings = settings_for(url, root / "data", pool_max=20)
    settings.worktree.base_dir = root / "worktrees"
    settings.runtime.tmux_socket = socket
    settings.monitor.interval_s = 2.0
    settings.retry.auto = False
    settings.governor.tier_limits[Tier.SOVEREIGN] = args.live + 10
    settings.governor.fleet_capacity = args.live + args.finished
    settings.governor.rate_limit = args.live + 10  # the seeding spawns them all at once
    db = await Database.open(settings)
    conductor = build_conductor(settings, db)
    op = Operator(id="bench", tier=Tier.SOVEREIGN, is_admin=True)
    try:
        repo = make_repo(root / "repo")
        selected = await seed(conductor, op, repo, args.live, args.finished)
        app = make_app(conductor=conductor, operator=op, repo=str(repo))
        cpu0, wall0 = cpu_s(), time.perf_counter()
        peak = rss_mb()
        async with app.run_test(size=(160, 50)) as pilot:
            t0 = time.perf_counter()
            while not app.engine_ready.is_set():
                await pilot.pause(0.01)
            print(f"engine ready, {app.main.table.row_count} rows, in {time.perf_counter() - t0:.2f}s")
            print(f"agents' start-up output through after {await settle():.1f}s more")
            # keypress -> frame: post the key, stop the clock at the first compositor update
            # (Screen -> App._display) after the cursor moved
            frame = asyncio.Event()
            table = app.main.table
            display = app._display

            def timed_display(screen, renderable):  # type: ignore[no-untyped-def]
                if renderable is not None and table.cursor_row != row_before:
                    frame.set()
                return display(screen, renderable)

            preview = app.main.preview
            if args.preview:
                await pilot.press("p")
                await pilot.pause(0.5)
            app._display = timed_display  # type: ignore[method-assign]
            latencies = []
            key_cpu = []
            steal0, total0 = cpu_ticks()
            idle0, _ = idle_ticks()
            for i in range(args.keys):
                key = "down" if (i // 50) % 2 == 0 else "up"
                row_before = table.cursor_row
                frame.clear()
                start, thread0 = time.perf_counter(), time.thread_time()
                app.simulate_key(key)
                await asyncio.wait_for(frame.wait(), 5)
                latencies.append((time.perf_counter() - start) * 1000)
                key_cpu.append((time.thread_time() - thread0) * 1000)
                peak = max(peak, rss_mb())
                await asyncio.sleep(0.01)
                if args.preview:  # the pane switches to the task the cursor rests on
                    await asyncio.sleep(PREVIEW_REST_S)
            app._display = display  # type: ignore[method-assign]
            if args.preview:
                print(f"  with the preview pane open: it showed {preview.task_id} last, "
                      f"{preview.log_pane.received} lines of it")
            steal1, total1 = cpu_ticks()
            idle1, _ = idle_ticks()
            latencies.sort()
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(f"keypress-to-frame over {len(latencies)} keys: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                  f"(target p99 <= 50 ms)")
            key_cpu.sort()
            stolen = 100 * (steal1 - steal0) / max(total1 - total0, 1)
            busy = 100 - 100 * (idle1 - idle0) / max(total1 - total0, 1)
            print(f"  main-thread CPU per key: p50 {statistics.median(key_cpu):.1f} ms, "
                  f"p99 {key_cpu[int(len(key_cpu) * 0.99) - 1]:.1f} ms; meanwhile the machine's 2 cores were "
                  f"{busy:.0f}% busy (all processes), {stolen:.0f}% stolen by the hypervisor")

            # typing a filter: each keystroke re-filters 1,000 tasks; clock to the next frame
            drawn = asyncio.Event()

            def any_display(screen, renderable):  # type: ignore[no-untyped-def]
                if renderable is not None:
                    drawn.set()
                return display(screen, renderable)

            await pilot.press("slash")
            await pilot.pause(0.1)
            app._display = any_display  # type: ignore[method-assign]
            typed = []
            for key in [*"task 7", "escape"]:  # "7" keeps the tasks with a 7 anywhere: a fraction
                drawn.clear()
                start = time.perf_counter()
                app.simulate_key(key)
                await asyncio.wait_for(drawn.wait(), 5)
                typed.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.05)
            app._display = display  # type: ignore[method-assign]
            print(f"filter keystroke-to-frame over {len(typed)} keys (type 'task 7', then escape): "
                  f"median {statistics.median(typed):.1f} ms, max {max(typed):.1f} ms ({' '.join(f'{t:.0f}' for t in typed)})")

            app.main.select(selected)
            await pilot.pause(0.05)
            t_open = time.perf_counter()
            app.simulate_key("l")
            # the screen is pushed before its widgets are mounted: wait for the log pane itself
            while not (isinstance(app.screen, DetailScreen) and app.screen.query(TailLog)):
                await pilot.pause(0.01)
            log = app.screen.query_one(TailLog)
            while log.received < SELECTED_FLOOD and time.perf_counter() - t_open < 120:
                await asyncio.sleep(0.01)
                peak = max(peak, rss_mb())
            elapsed = time.perf_counter() - t_open
            rate = log.received / elapsed
            print(f"log pane: {log.received:,} lines of the selected agent (a {SELECTED_FLOOD:,}-line flood) "
                  f"reached the pane {elapsed:.2f}s after opening it = {rate:,.0f} lines/s "
                  f"(target >= 10,000); {log.line_count} kept (max_lines {log.max_lines})")
            await pilot.press("escape")
            await pilot.pause(0.2)
        wall, cpu = time.perf_counter() - wall0, cpu_s() - cpu0
        print(f"CPU (engine + UI process): {cpu:.1f}s over {wall:.1f}s wall = {100 * cpu / wall:.0f}% of a core")
        print(f"peak RSS: {peak:.0f} MB (target <= 200 MB)")
    finally:
        await close_conductor(conductor)
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
        await drop_database(OWNER_URL, url)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--finished", type=int, default=800)
    parser.add_argument("--keys", type=int, default=400)
    parser.add_argument("--preview", action="store_true", help="keys timed with the preview pane open")
    asyncio.run(main(parser.parse_args()))
