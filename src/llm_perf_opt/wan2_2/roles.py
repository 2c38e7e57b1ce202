"""What the report needs to know of Wan2.2's modules: Wan2.1's roles (the transformer, umT5 and the
VAE blocks are the same classes), and the official module each component lives in
(``qualified_class_name``), read from Wan-Video/Wan2.2 ``wan/``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from llm_perf_opt.wan2_1.roles import PACKAGE, ROLES
from llm_perf_opt.wan2_2.variants import EXPERT_NAMES, Wan22Variant

__all__ = ["PACKAGE", "PIPELINE_MODULES", "ROLES", "component_modules"]

PIPELINE_MODULES: Final[Mapping[str, str]] = MappingProxyType(
    {"WanT2V": "wan.text2video", "WanI2V": "wan.image2video", "WanTI2V": "wan.textimage2video"}
)


def component_modules(variant: Wan22Variant) -> Mapping[str, str]:
    """Top-level component id → the official module of its classes."""
    vae = "wan.modules.vae2_1" if variant.vae == "wan2.1" else "wan.modules.vae2_2"
    return MappingProxyType(
        {
            **dict.fromkeys((*EXPERT_NAMES, "diffusion"), "wan.modules.model"),
            "text_encoder": "wan.modules.t5",
            "vae": vae,
            "scheduler": "wan.utils.fm_solvers_unipc",
        }
    )
