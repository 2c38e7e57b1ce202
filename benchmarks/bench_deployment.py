"""Benchmark of the deployment engine: cold starts of the main job, a warm in-process report, and a
10⁶-point grid of whole-run seconds.

Run: ``python benchmarks/bench_deployment.py``. It reports, for
``llm-perf-opt report --variant t2v-14b --profile wan2-1-official-720p --device h100 --gpus 8``:

- cold, empty disk cache: a new process with a fresh cache directory (builds and compiles all);
- cold, warm disk cache: a new process loading the cached evaluators;
- warm in-process: the same report again in one process (``force_rebuild``);
- the whole run's seconds at 10⁶ random valid workloads, and on a 100 × 100 × 100 broadcast grid of
  frames × heights × widths, through the compiled engine (the total alone).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

COMMAND = [
    "report",
    "--variant",
    "t2v-14b",
    "--profile",
    "wan2-1-official-720p",
    "--device",
    "h100",
    "--gpus",
    "8",
    "--force-rebuild",
]


def _process(cache: Path, out: Path) -> float:
    env = {**os.environ, "LLM_PERF_OPT_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "llm_perf_opt.cli", *COMMAND, "--out", str(out)],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def _best_of(repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Run the benchmark and print its numbers."""
    with tempfile.TemporaryDirectory() as folder:
        cache, out = Path(folder) / "cache", Path(folder) / "reports"
        empty = _process(cache, out)
        warm_disk = min(_process(cache, out) for _ in range(3))
        os.environ["LLM_PERF_OPT_CACHE_DIR"] = str(cache)
        from llm_perf_opt.cli import main as cli_main
        from llm_perf_opt.deployment.engine import run_model
        from llm_perf_opt.models import build_deployment
        from llm_perf_opt.symbolic.symbols import Workload

        cli_main([*COMMAND, "--out", str(out)])
        start = time.perf_counter()
        for _ in range(5):
            cli_main([*COMMAND, "--out", str(out)])
        in_process = (time.perf_counter() - start) / 5

        model = run_model(build_deployment("t2v-14b", accelerator="h100", gpus=8))
        rng = np.random.default_rng(0)
        n = 1_000_000
        grid = Workload(
            batch=rng.integers(1, 5, n),
            frames=4 * rng.integers(0, 50, n) + 1,
            height=16 * rng.integers(15, 91, n),
            width=16 * rng.integers(20, 161, n),
            steps=rng.integers(1, 100, n),
            text_len=np.full(n, 512),
        )
        model.evaluate(grid, names=("total",))
        grid_seconds = _best_of(3, lambda: model.evaluate(grid, names=("total",)))
        broadcast = Workload(
            batch=1,
            frames=(4 * np.arange(100) + 1)[:, None, None],
            height=(16 * np.arange(15, 115))[None, :, None],
            width=(16 * np.arange(20, 120))[None, None, :],
            steps=50,
            text_len=512,
        )
        model.evaluate(broadcast, names=("total",))
        broadcast_seconds = _best_of(3, lambda: model.evaluate(broadcast, names=("total",)))
    print(f"cold, empty disk cache:   {empty:6.2f} s")
    print(f"cold, warm disk cache:    {warm_disk:6.2f} s (best of 3)")
    print(f"warm in-process report:   {in_process:6.3f} s (mean of 5, printing included)")
    print(f"whole-run seconds at 10^6 random points:      {grid_seconds:6.3f} s (best of 3)")
    print(f"whole-run seconds on a 100^3 broadcast grid:  {broadcast_seconds:6.3f} s (best of 3)")


if __name__ == "__main__":
    main()
