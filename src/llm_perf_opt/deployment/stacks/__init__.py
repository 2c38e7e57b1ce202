"""The inference stacks people run Wan2.1 on, as data: one JSON file per stack, each choice sourced.

``official``, ``diffusers``, ``diffusers-compile``, ``xdit``, ``fastvideo``, ``lightx2v``,
``sglang-diffusion``, ``diffsynth`` and ``flashdreams`` ship with the package (the ``*.json`` files
next to this module). :func:`get_stack` returns one by name; :func:`load_stack` reads a user's file
of the same schema. Structuring goes through the project's one strict converter
(:func:`llm_perf_opt.contracts.converter.structure`), so a wrong type, an unknown field or a value
outside a vocabulary is one :class:`~llm_perf_opt.errors.LlmPerfOptError` naming the file, the
field path, the value and what is accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Final

from llm_perf_opt.contracts.converter import read_json, structure
from llm_perf_opt.deployment.stacks.record import (
    ATTENTION_KERNELS,
    GEMM_PRECISIONS,
    GEMM_RATE_KEYS,
    KERNEL_FAMILIES,
    KERNEL_FAMILIES_OF,
    SM120_DEVICES,
    Chains,
    Choice,
    RunDefaults,
    Stack,
    kernel_available,
    kernel_family,
)
from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "ATTENTION_KERNELS",
    "GEMM_PRECISIONS",
    "GEMM_RATE_KEYS",
    "KERNEL_FAMILIES",
    "KERNEL_FAMILIES_OF",
    "SM120_DEVICES",
    "STACKS",
    "STACK_NAMES",
    "Chains",
    "Choice",
    "RunDefaults",
    "Stack",
    "get_stack",
    "kernel_available",
    "kernel_family",
    "load_stack",
]

STACK_NAMES: Final = (
    "official",
    "diffusers",
    "diffusers-compile",
    "xdit",
    "fastvideo",
    "lightx2v",
    "sglang-diffusion",
    "diffsynth",
    "flashdreams",
)
"""The shipped presets, in the order the documentation lists them."""

_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "wan": "official",
        "wan2.1": "official",
        "xfuser": "xdit",
        "sglang": "sglang-diffusion",
        "sgl-diffusion": "sglang-diffusion",
        "sglang-multimodal-gen": "sglang-diffusion",
        "diffsynth-studio": "diffsynth",
        "flash-dreams": "flashdreams",
    }
)


def _key(name: str) -> str:
    """Lookup key of a stack name: case, spaces and underscores ignored."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def load_stack(path: str | Path) -> Stack:
    """The stack described by the JSON file ``path`` (the schema of the shipped files)."""
    return structure(read_json(path), Stack, where=str(path))


def _builtin() -> Mapping[str, Stack]:
    folder = resources.files("llm_perf_opt.deployment.stacks")
    stacks: dict[str, Stack] = {}
    for name in STACK_NAMES:
        data = json.loads(folder.joinpath(f"{name}.json").read_text("utf-8"))
        stack = structure(data, Stack, where=f"built-in {name}.json")
        if stack.name != name:
            raise LlmPerfOptError(f"built-in {name}.json.name: must be {name!r}, got {stack.name!r}")
        stacks[name] = stack
    return MappingProxyType(stacks)


STACKS: Final[Mapping[str, Stack]] = _builtin()
"""The shipped stacks, keyed by name in :data:`STACK_NAMES` order."""


def get_stack(name: str, catalog: Mapping[str, Stack] = STACKS) -> Stack:
    """The stack called ``name`` (case, spaces and underscores ignored; ``sglang`` and other
    common spellings accepted). An unknown name is an error that lists the known stacks."""
    if not isinstance(name, str) or not name.strip():
        raise LlmPerfOptError(f"stack: must be a stack name, got {name!r}; known: {', '.join(catalog)}")
    key = _key(name)
    found = catalog.get(key) or catalog.get(_ALIASES.get(key, ""))
    if found is None:
        raise LlmPerfOptError(f"stack: unknown stack {name!r}; known: {', '.join(catalog)}")
    return found
