"""The documentation's figures, written in one call: ``python -m llm_perf_opt.plots.gallery FOLDER``.

Each figure is written as PNG, the format the documentation embeds. The set is fixed here so
that the committed pictures can be regenerated exactly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from matplotlib.figure import Figure

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.plots._common import save_figure
from llm_perf_opt.plots.breakdown import breakdown_figure
from llm_perf_opt.plots.calibration import calibration_figure
from llm_perf_opt.plots.defaults import FORMATS
from llm_perf_opt.plots.deployments import deployments_figure
from llm_perf_opt.plots.multi_gpu import multi_gpu_figure
from llm_perf_opt.plots.roofline import roofline_figure
from llm_perf_opt.plots.scaling import scaling_figure

__all__ = ["GALLERY", "write_gallery"]

GALLERY: Final[dict[str, Callable[[], Figure]]] = {
    "breakdown_t2v_14b_720p_h100x8": lambda: breakdown_figure(
        "t2v-14b", "wan2-1-official-720p", device="h100", gpus=8
    ),
    "scaling_t2v_14b_h100x8": lambda: scaling_figure(
        "t2v-14b", "wan2-1-official-720p", device="h100", gpus=8
    ),
    "roofline_t2v_14b_720p_h100": lambda: roofline_figure("t2v-14b", "wan2-1-official-720p", device="h100"),
    "multi_gpu_t2v_14b_720p_h100": lambda: multi_gpu_figure("t2v-14b", "wan2-1-official-720p", device="h100"),
    "deployments_t2v_1_3b_480p": deployments_figure,
    "calibration": calibration_figure,
}
"""File stem → the figure written under it."""


def write_gallery(folder: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write every figure of :data:`GALLERY` into ``folder`` in each of ``formats``."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise LlmPerfOptError(f"formats: unknown format {unknown[0]!r}; accepted: {', '.join(FORMATS)}")
    if not folder.is_dir():
        raise LlmPerfOptError(f"folder: {str(folder)!r} is not a folder")
    written: list[Path] = []
    for stem, build in GALLERY.items():
        figure = build()
        written.extend(save_figure(figure, folder / f"{stem}.{suffix}") for suffix in formats)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Write the gallery into the folder named by the one argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m llm_perf_opt.plots.gallery FOLDER", file=sys.stderr)
        return 2
    try:
        for path in write_gallery(Path(args[0])):
            print(path)
    except LlmPerfOptError as error:
        print(f"llm-perf-opt: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
