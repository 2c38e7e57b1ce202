"""Compare the analytic VACE transformer with a reference record (``tests/golden/vace/``), id by id.

As :func:`llm_perf_opt.wan2_1.check.compare_with_record`: FLOPs and parameters of every id, bytes of
every Linear and convolution and of every fused attention op, under the ``diffusers`` profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.module import build_tree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.check import Comparison, compare_modules
from llm_perf_opt.wan2_1.implementation import DIFFUSERS
from llm_perf_opt.wan2_1.vace import declare_vace_dit, get_vace_variant

__all__ = ["compare_vace_with_record"]


def compare_vace_with_record(record: Mapping[str, Any], *, bytes_checked: bool = True) -> list[Comparison]:
    """Every comparison of the analytic ``VaceWanModel`` with one VACE reference record."""
    variant = get_vace_variant(record["variant"])
    load = record["workload"]
    root = declare_vace_dit(variant, DIFFUSERS, load["reference_images"])
    workload = Workload(
        batch=load["batch"],
        frames=load["frames"],
        height=load["height"],
        width=load["width"],
        steps=1,
        text_len=load["text_len"],
    )
    metrics = compile_tree(build_tree(root, "diffusion")).evaluate_exact(workload)
    return compare_modules(
        root,
        "diffusion",
        metrics,
        workload.subs(),
        record["modules"],
        bytes_checked=bytes_checked,
        module_bytes=True,
    )
