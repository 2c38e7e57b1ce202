"""Figures of the cost and time model (matplotlib, rendered by Agg, no pyplot): each function
returns a ``matplotlib.figure.Figure``; :func:`save_figure` writes it as PNG or SVG.

- :func:`breakdown_figure`: where one run's FLOPs, bytes and time go, by component and top module;
- :func:`scaling_figure`: FLOPs and time against frames and resolution, with fitted exponents and
  the closed form's leading terms;
- :func:`roofline_figure`: a device's roofs with each op class of a transformer forward on them;
- :func:`multi_gpu_figure`: time, speed-up and communication share against the GPU count;
- :func:`deployments_figure`: time and peak memory per GPU of one run on several devices and GPU
  counts;
- :func:`calibration_figure`: the time model against the published timings.

Needs the ``plots`` extra (matplotlib), imported when a figure function is first used, so that the
command line can list the ``plot`` command without it::

    from llm_perf_opt.plots import breakdown_figure, save_figure
    save_figure(breakdown_figure("t2v-14b", device="h100", gpus=8), "breakdown.png")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from llm_perf_opt.plots.defaults import FORMATS

if TYPE_CHECKING:
    from llm_perf_opt.plots._common import save_figure
    from llm_perf_opt.plots.breakdown import breakdown_figure
    from llm_perf_opt.plots.calibration import calibration_figure
    from llm_perf_opt.plots.deployments import deployments_figure
    from llm_perf_opt.plots.multi_gpu import multi_gpu_figure
    from llm_perf_opt.plots.roofline import roofline_figure
    from llm_perf_opt.plots.scaling import scaling_figure

__all__ = [
    "FORMATS",
    "breakdown_figure",
    "calibration_figure",
    "deployments_figure",
    "multi_gpu_figure",
    "roofline_figure",
    "save_figure",
    "scaling_figure",
]

_HOMES: Final = {
    "save_figure": "llm_perf_opt.plots._common",
    "breakdown_figure": "llm_perf_opt.plots.breakdown",
    "calibration_figure": "llm_perf_opt.plots.calibration",
    "deployments_figure": "llm_perf_opt.plots.deployments",
    "multi_gpu_figure": "llm_perf_opt.plots.multi_gpu",
    "roofline_figure": "llm_perf_opt.plots.roofline",
    "scaling_figure": "llm_perf_opt.plots.scaling",
}
"""Public name → the module that defines it (imported on first use)."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
