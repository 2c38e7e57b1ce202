"""Hardware, independent of any model: accelerators as data (a source per row), precisions,
efficiency factors as data and as symbols, the roofline of an op kind, collectives over links, and
the host CPU.

How a model runs on these devices — placement, schedule, parallelism, memory phases, calibration,
sizing — is the deployment layer's (:mod:`llm_perf_opt.deployment`).
"""

from __future__ import annotations

from llm_perf_opt.hardware.accelerators import (
    ACCELERATORS,
    FAMILIES,
    PRECISIONS,
    Accelerator,
    get_accelerator,
    load_accelerators,
)
from llm_perf_opt.hardware.efficiency import (
    ATTENTION_KERNELS,
    EFFICIENCIES,
    FACTOR_KEYS,
    FACTOR_SYMBOLS,
    Efficiency,
    EfficiencyTable,
    load_efficiencies,
)
from llm_perf_opt.hardware.host import DEFAULT_HOST, HostCpu
from llm_perf_opt.hardware.roofline import OpClass, PrecisionPolicy, compute_precision, op_class

__all__ = [
    "ACCELERATORS",
    "ATTENTION_KERNELS",
    "DEFAULT_HOST",
    "EFFICIENCIES",
    "FACTOR_KEYS",
    "FACTOR_SYMBOLS",
    "FAMILIES",
    "PRECISIONS",
    "Accelerator",
    "Efficiency",
    "EfficiencyTable",
    "HostCpu",
    "OpClass",
    "PrecisionPolicy",
    "compute_precision",
    "get_accelerator",
    "load_accelerators",
    "load_efficiencies",
    "op_class",
]
