"""Compare the analytic Wan2.2 transformers with a reference record, module id by module id.

A record (``tests/golden/wan2_2/``) measures diffusers' ``WanTransformer3DModel`` built from the
variant's transformer record, keyed ``diffusion.…`` as every DiT record is. The two A14B experts are
the same architecture (diffusers' ``transformer`` and ``transformer_2``; officially
``high_noise_model`` and ``low_noise_model``), so one record checks both: each expert's ids are the
record's with ``diffusion`` replaced by the expert's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.check import Comparison
from llm_perf_opt.wan2_1.check import compare_with_record as compare_dit_with_record
from llm_perf_opt.wan2_2.variants import get_variant

__all__ = ["compare_with_record"]


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
