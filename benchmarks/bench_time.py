"""Benchmark of the time model: build and compile the roofline of the Wan2.1 T2V-14B transformer,
then evaluate it over 10⁶ workloads.

Run: ``python benchmarks/bench_time.py``. It reports:

- the cold build (module tree, time expressions) and compile (lambdify with CSE) times;
- the time to evaluate every module's seconds over 10⁶ workload points, as independent points and
  as a broadcast grid, and the root's seconds alone;
- the same for the per-rank forward of an 8-GPU Ulysses + FSDP run (compute and communication);
- the time to refit the efficiency factors to the calibration points.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import sympy

from llm_perf_opt.hardware import (
    Parallelism,
    dit_parallel_time,
    fit_efficiencies,
    get_accelerator,
    time_model,
)
from llm_perf_opt.hardware.roofline import compile_seconds
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.implementation import get_implementation
from llm_perf_opt.wan2_1.variants import get_variant


def _best_of(repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _valid_points(n: int) -> Workload:
    """``n`` random workloads the pipeline accepts: 4k+1 frames, sizes multiple of 16."""
    rng = np.random.default_rng(0)
    return Workload(
        batch=rng.integers(1, 5, n),
        frames=4 * rng.integers(0, 50, n) + 1,
        height=16 * rng.integers(15, 91, n),
        width=16 * rng.integers(20, 161, n),
        steps=rng.integers(1, 100, n),
        text_len=np.full(n, 512),
    )


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--variant", default="t2v-14b")
    parser.add_argument("--implementation", default="official")
    parser.add_argument("--device", default="h100")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    variant, implementation = get_variant(args.variant), get_implementation(args.implementation)
    device = get_accelerator(args.device)
    start = time.perf_counter()
    tree = dit_tree(variant, implementation)
    model = time_model(tree, device)
    built = time.perf_counter()
    flat = _valid_points(args.points)
    model.evaluate(Workload(batch=1, frames=81, height=480, width=832, steps=1, text_len=512))
    compiled = time.perf_counter()
    unique = len(set(model.seconds.values()))
    print(
        f"{variant.model_id} on {device.display_name}: {len(tree)} modules, {unique} unique time expressions"
    )
    print(f"cold build: {built - start:.3f} s, compile: {compiled - built:.3f} s")

    n = args.points
    # 4 · 50 · 50 · 100 = 10⁶ points as broadcast axes
    grid = Workload(
        batch=np.arange(1, 5).reshape(4, 1, 1, 1),
        frames=(4 * np.arange(50) + 1).reshape(1, 50, 1, 1),
        height=(16 * np.linspace(15, 90, 50).astype(int)).reshape(1, 1, 50, 1),
        width=(16 * np.linspace(20, 160, 100).astype(int)).reshape(1, 1, 1, 100),
        steps=1,
        text_len=512,
    )
    flat_time = _best_of(args.repeats, lambda: model.evaluate(flat))
    grid_time = _best_of(args.repeats, lambda: model.evaluate(grid))
    root = compile_seconds((model.root_seconds,))
    root_time = _best_of(args.repeats, lambda: root(*flat.values()))
    print(f"{n} points, seconds of every module:")
    print(f"  flat points:    {flat_time * 1e3:8.1f} ms")
    print(f"  broadcast grid: {grid_time * 1e3:8.1f} ms")
    print(f"  root only, flat points: {root_time * 1e3:8.1f} ms")

    start = time.perf_counter()
    parallel = dit_parallel_time(variant, implementation, device, Parallelism(8, 1, fsdp=True))
    forward = compile_seconds((sympy.sympify(parallel.forward_seconds),))
    forward(*flat.values())
    ready = time.perf_counter()
    parallel_time = _best_of(args.repeats, lambda: forward(*flat.values()))
    print(
        f"8-GPU Ulysses + FSDP per-rank forward: build + compile {ready - start:.3f} s, "
        f"{n} flat points {parallel_time * 1e3:.1f} ms"
    )

    start = time.perf_counter()
    result = fit_efficiencies()
    elapsed = time.perf_counter() - start
    print(f"refit of {len(result.values)} factors to {len(result.residuals)} points: {elapsed:.2f} s")


if __name__ == "__main__":
    main()
