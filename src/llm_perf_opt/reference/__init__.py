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

_MISSING = [name for name in ("torch", "diffusers", "transformers") if find_spec(name) is None]
if _MISSING:
    raise LlmPerfOptError(
        f"llm_perf_opt.reference: needs {', '.join(_MISSING)}, which are not installed; install the "
        "reference extra: pip install -c constraints.txt 'llm-perf-opt[reference]'"
    )

from llm_perf_opt.reference.counting import Measurement, OpCost  # noqa: E402
from llm_perf_opt.reference.dit import DitWorkload, build_diffusers_dit, dit_inputs, measure_dit  # noqa: E402
from llm_perf_opt.reference.encoders import (  # noqa: E402
    ImageEncoderWorkload,
    TextEncoderWorkload,
    build_clip_vision,
    build_umt5_encoder,
    measure_image_encoder,
    measure_text_encoder,
)
from llm_perf_opt.reference.golden import dit_record  # noqa: E402
from llm_perf_opt.reference.official_ids import (  # noqa: E402
    DIFFUSERS_TO_OFFICIAL,
    OfficialCosts,
    official_id,
    to_official,
)
from llm_perf_opt.reference.vae import VaeWorkload, build_diffusers_vae, measure_vae  # noqa: E402

__all__ = [
    "DIFFUSERS_TO_OFFICIAL",
    "DitWorkload",
    "ImageEncoderWorkload",
    "Measurement",
    "OfficialCosts",
    "OpCost",
    "TextEncoderWorkload",
    "VaeWorkload",
    "build_clip_vision",
    "build_diffusers_dit",
    "build_diffusers_vae",
    "build_umt5_encoder",
    "dit_inputs",
    "dit_record",
    "measure_dit",
    "measure_image_encoder",
    "measure_text_encoder",
    "measure_vae",
    "official_id",
    "to_official",
]
