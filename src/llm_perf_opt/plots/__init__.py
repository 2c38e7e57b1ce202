"""Figures of the cost and time model (matplotlib, rendered by Agg, no pyplot): each function returns a
``matplotlib.figure.Figure``; :func:`save_figure` writes it as PNG or SVG.

- :func:`breakdown_figure`: where one run's FLOPs, bytes and time go, by component and top module;
- :func:`scaling_figure`: FLOPs and time against frames and resolution, with fitted exponents and
  the closed form's leading terms;
- :func:`roofline_figure`: a device's roofs with each op class of a transformer forward on them;
- :func:`multi_gpu_figure`: time, speed-up and communication share against the GPU count;
- :func:`deployments_figure`: time and peak memory per GPU of one run on several devices and GPU
  counts;
- :func:`calibration_figure`: the time model against the published timings.

Needs the ``plots`` extra (matplotlib)::

    from llm_perf_opt.plots import breakdown_figure, save_figure
    save_figure(breakdown_figure("t2v-14b", device="h100", gpus=8), "breakdown.png")
"""

from __future__ import annotations

from llm_perf_opt.plots._common import FORMATS, save_figure
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
