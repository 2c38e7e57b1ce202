"""Compare the analytic Wan2.2 transformers with a reference record, module id by module id.

A record (``tests/golden/wan2_2/``) measures diffusers' ``WanTransformer3DModel`` built from the
variant's transformer record, keyed ``diffusion.…`` as every DiT record is. The two A14B experts are
the same architecture (diffusers' ``transformer`` and ``transformer_2``; officially
``high_noise_model`` and ``low_noise_model``), so one record checks both: each expert's ids are the
record's with ``diffusion`` replaced by the expert's name. The Wan2.2 VAE records
(``tests/golden/wan2_2_vae/``) are compared by :func:`compare_vae_with_record`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.module import build_tree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.check import (
    Comparison,
    _walk_calls,
    compare_modules,
    vae_kernel_bytes,
    vae_module_bytes,
)
from llm_perf_opt.wan2_1.check import compare_with_record as compare_dit_with_record
from llm_perf_opt.wan2_1.implementation import DIFFUSERS
from llm_perf_opt.wan2_2.vae import declare_vae
from llm_perf_opt.wan2_2.variants import get_variant

__all__ = ["compare_vae_with_record", "compare_with_record"]


def compare_with_record(record: Mapping[str, Any], *, bytes_checked: bool = True) -> list[Comparison]:
    """Every comparison of the variant's transformer(s) with one record: FLOPs and parameters of every
    id, bytes of every Linear/convolution and of every fused attention op; per expert for A14B."""
    variant = get_variant(record["variant"])
    if record.get("model_id") != variant.model_id:
        raise LlmPerfOptError(
            f"model_id: the record is of {record.get('model_id')!r}, not {variant.model_id!r}"
        )
    rows = compare_dit_with_record(record, bytes_checked=bytes_checked, variant=variant.transformer)
    if variant.experts is None:
        return rows
    return [
        Comparison(expert + row.module_id.removeprefix("diffusion"), row.metric, row.analytic, row.reference)
        for expert in variant.experts
        for row in rows
    ]


def compare_vae_with_record(record: Mapping[str, Any]) -> list[Comparison]:
    """FLOPs, parameters and whole eager bytes (``module_bytes``) of every Wan2.2 VAE id, and the bytes
    of its convolution and attention ops, against one reference record (an encode or a decode).

    The record measures diffusers' ``AutoencoderKLWan`` with the Wan2.2 configuration (the ``diffusers``
    profile); it cannot key the two SiLU applications of a residual block (one shared module) nor the
    parameter-free modules of the part that did not run, which are skipped as for the Wan2.1 VAE.
    """
    if record.get("model") != "wan2.2" or record.get("component") != "vae":
        raise LlmPerfOptError(f"component: expected a Wan2.2 VAE record, got {record.get('component')!r}")
    encodes, decodes = (1, 0) if record["use"] == "encode" else (0, 1)
    load = record["workload"]
    root = declare_vae(DIFFUSERS, encodes=encodes, decodes=decodes)
    workload = Workload(steps=1, text_len=0, **load)
    metrics = compile_tree(build_tree(root, "vae")).evaluate_exact(workload)
    reference = record["modules"]
    analytic = {}
    for module_id, figures in metrics.items():
        if module_id not in reference:
            shared_activation = module_id.split(".")[-2] == "residual" and module_id.endswith((".1", ".4"))
            if shared_activation or (figures["flops"] == 0 and figures["params"] == 0):
                continue
        analytic[module_id] = figures
    values = workload.subs()
    rows = compare_modules(root, "vae", analytic, values, reference, bytes_checked=False)
    rows += vae_module_bytes(analytic, reference)
    rows += vae_kernel_bytes(_walk_calls(root, "vae", sympy.Integer(1)), values, reference)
    return rows
