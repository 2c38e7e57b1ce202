"""Hardware and time: accelerators as data, efficiency factors, the roofline time of every module,
multi-GPU inference as Wan2.1 runs it, the whole run with offload, memory per device, the
calibration to published timings, and sizing queries.

Times are SymPy expressions in the workload symbols, in seconds per call of the tree's root (one
transformer forward for the DiT, one whole run for a pipeline), compiled once to numpy for grids
of workloads::

    from llm_perf_opt.hardware import pipeline_time, largest_frames
    run = pipeline_time("t2v-14b", "official", "h100", gpus=8)
    run.total                     # seconds of one run, an expression in the workload symbols
    run.evaluate(workload)        # total, stages and loads as float64 arrays
    largest_frames("t2v-14b", "h100", 8, height=720, width=1280, time_budget_s=600).answer
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
    predict_record,
)
from llm_perf_opt.hardware.efficiency import (
    ATTENTION_KERNELS,
    EFFICIENCIES,
    Efficiency,
    EfficiencyTable,
    load_efficiencies,
)
from llm_perf_opt.hardware.host import DEFAULT_HOST, HostCpu
from llm_perf_opt.hardware.memory import (
    DeviceMemory,
    RunMemory,
    activation_peak,
    dit_memory_per_device,
    kv_cache_bytes,
    run_memory,
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
from llm_perf_opt.hardware.pipeline import (
    STAGES,
    ModuleTimes,
    PipelineTime,
    module_times,
    pipeline_time,
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
from llm_perf_opt.hardware.run import RunConfig, default_parallelism, run_config
from llm_perf_opt.hardware.sizing import (
    RunFigures,
    SizingAnswer,
    estimate_run,
    fewest_devices,
    largest_frames,
    largest_resolution,
)

__all__ = [
    "ACCELERATORS",
    "ATTENTION_KERNELS",
    "DEFAULT_HOST",
    "DIT_POINTS",
    "EFFICIENCIES",
    "FAMILIES",
    "PIPELINE_RECORDS",
    "PRECISIONS",
    "STAGES",
    "Accelerator",
    "CalibrationTable",
    "DeviceMemory",
    "Efficiency",
    "EfficiencyTable",
    "HostCpu",
    "ModuleTimes",
    "OpClass",
    "Overlap",
    "ParallelTime",
    "Parallelism",
    "PipelinePredictor",
    "PipelineTime",
    "PrecisionPolicy",
    "RunConfig",
    "RunFigures",
    "RunMemory",
    "SizingAnswer",
    "TimeModel",
    "activation_peak",
    "calibration_table",
    "check_parallelism",
    "compute_precision",
    "default_parallelism",
    "dit_memory_per_device",
    "dit_parallel_time",
    "estimate_run",
    "fewest_devices",
    "fit_efficiencies",
    "fsdp_all_gather_seconds",
    "get_accelerator",
    "host_transfer_seconds",
    "kv_cache_bytes",
    "largest_frames",
    "largest_resolution",
    "link_for",
    "load_accelerators",
    "load_efficiencies",
    "module_times",
    "op_class",
    "padded_tokens",
    "pipeline_time",
    "predict_record",
    "ring_pass_seconds",
    "run_config",
    "run_memory",
    "time_model",
    "tokens_per_rank",
    "ulysses_all_to_all_seconds",
    "weight_bytes",
    "weight_bytes_by_stage",
]
