"""Hardware and time: accelerators as data, efficiency factors, the roofline time of every module,
multi-GPU inference as Wan2.1 runs it, memory per device, and the calibration to published timings.

Times are SymPy expressions in the workload symbols, in seconds per call of the tree's root (one
transformer forward for the DiT), compiled once to numpy for grids of workloads::

    from llm_perf_opt.hardware import get_accelerator, time_model
    from llm_perf_opt.wan2_1.evaluate import dit_tree
    model = time_model(dit_tree(variant, implementation), get_accelerator("h100"), attention_kernel="fa2")
    model.root_seconds            # the expression
    model.evaluate(workload)      # module id → float64 array of seconds
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
from llm_perf_opt.hardware.calibration import (
    DIT_POINTS,
    PIPELINE_RECORDS,
    CalibrationTable,
    PipelinePredictor,
    calibration_table,
    fit_efficiencies,
)
from llm_perf_opt.hardware.efficiency import (
    ATTENTION_KERNELS,
    EFFICIENCIES,
    Efficiency,
    EfficiencyTable,
    load_efficiencies,
)
from llm_perf_opt.hardware.memory import (
    DeviceMemory,
    activation_peak,
    dit_memory_per_device,
    kv_cache_bytes,
    weight_bytes,
    weight_bytes_by_stage,
)
from llm_perf_opt.hardware.parallel import (
    Overlap,
    Parallelism,
    ParallelTime,
    check_parallelism,
    dit_parallel_time,
    fsdp_all_gather_seconds,
    link_for,
    padded_tokens,
    ring_pass_seconds,
    tokens_per_rank,
    ulysses_all_to_all_seconds,
)
from llm_perf_opt.hardware.roofline import (
    OpClass,
    PrecisionPolicy,
    TimeModel,
    compute_precision,
    host_transfer_seconds,
    op_class,
    time_model,
)

__all__ = [
    "ACCELERATORS",
    "ATTENTION_KERNELS",
    "DIT_POINTS",
    "EFFICIENCIES",
    "FAMILIES",
    "PIPELINE_RECORDS",
    "PRECISIONS",
    "Accelerator",
    "CalibrationTable",
    "DeviceMemory",
    "Efficiency",
    "EfficiencyTable",
    "OpClass",
    "Overlap",
    "ParallelTime",
    "Parallelism",
    "PipelinePredictor",
    "PrecisionPolicy",
    "TimeModel",
    "activation_peak",
    "calibration_table",
    "check_parallelism",
    "compute_precision",
    "dit_memory_per_device",
    "dit_parallel_time",
    "fit_efficiencies",
    "fsdp_all_gather_seconds",
    "get_accelerator",
    "host_transfer_seconds",
    "kv_cache_bytes",
    "link_for",
    "load_accelerators",
    "load_efficiencies",
    "op_class",
    "padded_tokens",
    "ring_pass_seconds",
    "time_model",
    "tokens_per_rank",
    "ulysses_all_to_all_seconds",
    "weight_bytes",
    "weight_bytes_by_stage",
]
