"""The figures' defaults and file formats, importable without matplotlib (the command line reads
them to build its options before any figure is drawn)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEPLOYMENT_DEVICES",
    "DEPLOYMENT_GPU_COUNTS",
    "FORMATS",
    "MULTI_GPU_COUNTS",
    "TOP_MODULES",
]

FORMATS: Final = ("png", "svg")
"""The file formats a figure is written in, by the file's suffix."""

TOP_MODULES: Final = 8
"""Modules in the breakdown's right panel (the summary's rows, by FLOPs)."""

MULTI_GPU_COUNTS: Final = (1, 2, 4, 8)
"""GPU counts of the multi-GPU figure."""

DEPLOYMENT_DEVICES: Final = ("h100-sxm", "h200", "a100", "h20", "rtx4090")
"""Devices of the deployments figure."""

DEPLOYMENT_GPU_COUNTS: Final = (1, 8)
"""GPU counts of the deployments figure."""
