"""The reference: the real Wan2.1 implementation (diffusers) counted by PyTorch, on the meta device.

It builds diffusers' ``WanTransformer3DModel`` from the same variant record the analytic model uses,
runs one forward with no weights under ``FlopCounterMode`` and a byte counter, and re-keys the numbers
onto the official module ids (``diffusion.blocks.3.self_attn.q``...) so they compare id by id with the
analytic model. It is what proves the formulas.

This package needs the optional ``reference`` extra (torch, diffusers, transformers); the rest of the
library never imports torch. Without the extra, importing it raises :class:`LlmPerfOptError`.
"""

from __future__ import annotations

from importlib.util import find_spec

from llm_perf_opt.errors import LlmPerfOptError

_MISSING = [name for name in ("torch", "diffusers") if find_spec(name) is None]
if _MISSING:
    raise LlmPerfOptError(
        f"llm_perf_opt.reference: needs {' and '.join(_MISSING)}, which are not installed; install the "
        "reference extra: pip install -c constraints.txt 'llm-perf-opt[reference]'"
    )

from llm_perf_opt.reference.counting import Measurement, OpCost  # noqa: E402
from llm_perf_opt.reference.dit import DitWorkload, build_diffusers_dit, dit_inputs, measure_dit  # noqa: E402
from llm_perf_opt.reference.golden import dit_record  # noqa: E402
from llm_perf_opt.reference.official_ids import (  # noqa: E402
    DIFFUSERS_TO_OFFICIAL,
    OfficialCosts,
    official_id,
    to_official,
)

__all__ = [
    "DIFFUSERS_TO_OFFICIAL",
    "DitWorkload",
    "Measurement",
    "OfficialCosts",
    "OpCost",
    "build_diffusers_dit",
    "dit_inputs",
    "dit_record",
    "measure_dit",
    "official_id",
    "to_official",
]
