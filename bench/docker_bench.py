"""Spawn-to-running: DockerRuntime.spawn against raw `docker run -d` on the same engine,
in the same run, interleaved. Prints medians and the ratio (target <= 1.3).

    .venv/bin/python bench/docker_bench.py [--runs 15] [--image fleet-agent-test:latest]

Both sides start the same hardened container (read-only root, tmpfs, limits, cap-drop,
no-new-privileges, the shipped seccomp profile, network none, init); the raw side is the
docker CLI, timed from exec until it returns (the container is then running). Removal is
not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleet_tui.infra.docker_runtime import DEFAULT_SECCOMP_PROFILE, DockerRuntime
from fleet_tui.infra.protocols import AgentLaunch


def raw_argv(image: str, name: str, workdir: Path, prompt_dir: Path) -> list[str]:
    return [
        "docker", "run", "-d", "--name", name, "--label", "fleet-bench=true",
        "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=512m",
        "-v", f"{workdir}:/workspace", "-v", f"{prompt_dir}:/fleet:ro", "-w", "/workspace",
        "--memory", "2g", "--memory-swap", "2g", "--cpus", "2", "--pids-limit", "256",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
        "--security-opt", f"seccomp={DEFAULT_SECCOMP_PROFILE}",
        "--network", "none", "--user", "1000:1000", "--init", "--ipc", "private",
        "-e", "FLEET_BENCH_SECRET=not-a-real-secret",
        "--entrypoint", "/bin/sh", image, "-c", "exec sleep 60 < /fleet/prompt.txt",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--image", default="fleet-agent-test:latest")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        base = Path(tmp)
        workdir, prompt_dir = base / "work", base / "prompt"
        workdir.mkdir()
        prompt_dir.mkdir()
        (prompt_dir / "prompt.txt").write_text("bench prompt\n")
        runtime = DockerRuntime(args.image, log_dir=base / "logs", stop_grace_s=0)
        ours: list[float] = []
        raw: list[float] = []
        for i in range(args.runs + 1):  # the first round warms both paths up, untimed
            task_id = f"bench-{uuid.uuid4().hex[:10]}"
            launch = AgentLaunch(task_id, workdir, ["sleep", "60"], prompt="bench prompt",
                                 env={"FLEET_BENCH_SECRET": "not-a-real-secret"})
            start = time.perf_counter()
            await runtime.spawn(launch)
            ours_s = time.perf_counter() - start
            await runtime.kill(task_id)

            name = f"fleet-bench-raw-{uuid.uuid4().hex[:10]}"
            start = time.perf_counter()
            subprocess.run(raw_argv(args.image, name, workdir, prompt_dir), check=True,
                           capture_output=True)
            raw_s = time.perf_counter() - start
            subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)
            if i:
                ours.append(ours_s)
                raw.append(raw_s)

    ours_ms = statistics.median(ours) * 1000
    raw_ms = statistics.median(raw) * 1000
    print(f"runs: {args.runs} (interleaved, after one warm-up round)")
    print(f"DockerRuntime.spawn  median {ours_ms:7.1f} ms  (min {min(ours) * 1000:.1f})")
    print(f"docker run -d        median {raw_ms:7.1f} ms  (min {min(raw) * 1000:.1f})")
    print(f"ratio spawn / docker run -d = {ours_ms / raw_ms:.2f}  (target <= 1.3)")


if __name__ == "__main__":
    asyncio.run(main())
