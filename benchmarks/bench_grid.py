"""Benchmark of the streaming grid writer: 10⁶ and 10⁷ points of a whole T2V-14B run to a file.

Run: ``python benchmarks/bench_grid.py [--points 1e6 1e7] [--format csv parquet]``. Each case runs in
a fresh process, so its peak resident memory (``ru_maxrss``) is its own. For each it reports:

- ``compile``: building the pipeline tree and compiling the one column asked for
  (``pipeline:flops``), a cost paid once per process;
- ``write``: validating the axes, evaluating every point chunk by chunk and writing the file, in
  wall-clock and in CPU seconds (the latter is what a loaded, shared machine cannot inflate);
- ``peak RSS``: the process's peak resident memory, imports included.

The targets are 10⁶ points in < 2 s and < 500 MB, 10⁷ points in < 20 s and < 1 GB (the write
time; the compile time is listed apart). The grid is frames 1…N × height × width multiples of 16.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = "--child"


def _axes(points: int) -> dict[str, list[int]]:
    side = 100
    frames = points // (side * side)
    return {
        "batch": [1],
        "frames": list(range(1, frames + 1)),
        "height": list(range(16, 16 * side + 1, 16)),
        "width": list(range(16, 16 * side + 1, 16)),
        "steps": [50],
        "text_len": [512],
    }


def _child(points: int, fmt: str, out: Path) -> dict[str, float]:
    start = time.perf_counter()
    from llm_perf_opt.report.grid import GridAxes, GridRequest, write_grid
    from llm_perf_opt.wan2_1.implementation import get_implementation
    from llm_perf_opt.wan2_1.variants import get_variant

    imported = time.perf_counter()
    request = GridRequest(
        variant=get_variant("t2v-14b"),
        implementation=get_implementation("official"),
        guidance=True,
        pad_text=True,
        axes=GridAxes.of(**_axes(points)),
        columns=(("pipeline", "flops"),),
    )
    request.evaluator()
    compiled = time.perf_counter()
    cpu = time.process_time()
    written = write_grid(request, out, fmt, progress=False)
    done = time.perf_counter()
    cpu_done = time.process_time()
    return {
        "points": written,
        "import_s": imported - start,
        "compile_s": compiled - imported,
        "write_s": done - compiled,
        "write_cpu_s": cpu_done - cpu,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "file_mb": out.stat().st_size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument(
        "--format", nargs="+", default=["csv", "parquet"], choices=["csv", "parquet", "netcdf"]
    )
    parser.add_argument(_CHILD, nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        points, fmt, out = args.child
        print(json.dumps(_child(int(float(points)), fmt, Path(out))))
        return
    print(
        f"{'points':>10} {'format':>8} {'compile s':>10} {'write s':>8} {'write CPU s':>12} "
        f"{'peak RSS MB':>12} {'file MB':>8}"
    )
    with tempfile.TemporaryDirectory() as directory:
        for points in args.points:
            for fmt in args.format:
                out = Path(directory) / f"grid.{fmt}"
                result = subprocess.run(
                    [sys.executable, __file__, _CHILD, str(int(points)), fmt, str(out)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                row = json.loads(result.stdout)
                print(
                    f"{row['points']:>10.0f} {fmt:>8} {row['compile_s']:>10.2f} {row['write_s']:>8.2f} "
                    f"{row['write_cpu_s']:>12.2f} {row['rss_mb']:>12.0f} {row['file_mb']:>8.1f}"
                )
                out.unlink()


if __name__ == "__main__":
    main()
