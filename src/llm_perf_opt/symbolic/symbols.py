"""The six workload symbols, defined once, and the workload that gives them values.

Every cost expression of the library is written in these symbols and no others. Sizes derived from
them (token counts, latent frames) are named helpers in the model layers, built from these symbols.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import sympy
from attrs import frozen

__all__ = [
    "INPUT_SYMBOLS",
    "WHATIF_SYMBOLS",
    "WORKLOAD_SYMBOLS",
    "B",
    "F",
    "H",
    "L",
    "S",
    "W",
    "Workload",
    "WorkloadValue",
    "attention_density",
    "guided_fraction",
    "reused_steps",
]

B = sympy.Symbol("batch", integer=True, positive=True)
F = sympy.Symbol("frames", integer=True, positive=True)
H = sympy.Symbol("height", integer=True, positive=True)
W = sympy.Symbol("width", integer=True, positive=True)
S = sympy.Symbol("steps", integer=True, positive=True)
L = sympy.Symbol("text_len", integer=True, nonnegative=True)

# The order of a compiled evaluator's arguments and of Workload.values().
WORKLOAD_SYMBOLS: tuple[sympy.Symbol, ...] = (B, F, H, W, S, L)

attention_density = sympy.Symbol("attention_density", positive=True)
"""ρ ∈ (0, 1]: the fraction of the attention scores a sparse-attention kernel computes (1: dense)."""
reused_steps = sympy.Symbol("reused_steps", integer=True, nonnegative=True)
"""k ∈ [0, S): denoising steps whose transformer forwards a step cache reuses instead of running."""
guided_fraction = sympy.Symbol("guided_fraction", nonnegative=True)
"""τ ∈ [0, 1]: the fraction of the steps, from the first, that run classifier-free guidance."""

# The what-if symbols, after the workload's in every compiled evaluator's arguments.
WHATIF_SYMBOLS: tuple[sympy.Symbol, ...] = (attention_density, reused_steps, guided_fraction)
INPUT_SYMBOLS: tuple[sympy.Symbol, ...] = (*WORKLOAD_SYMBOLS, *WHATIF_SYMBOLS)

WorkloadValue: TypeAlias = int | np.integer[Any] | npt.NDArray[Any]
WhatIfValue: TypeAlias = int | float | Fraction | np.integer[Any] | np.floating[Any] | npt.NDArray[Any]


@frozen(kw_only=True, eq=False)
class Workload:
    """Values for the six workload symbols: Python ints, or numpy arrays that broadcast together.

    A workload of ints is one point and can be evaluated exactly; arrays describe a grid of points
    (e.g. ``frames=np.arange(1, 200)[:, None]`` with ``height=np.array([480, 720])[None, :]``).
    No range checks happen here: workloads are validated where they enter the library.

    The three what-if values (sparse attention, step-cache reuse, CFG truncation) default to today's
    run: dense attention, no reused step, guidance on every step.

    Attributes:
        batch: videos generated together (``B``).
        frames: output video frames (``F``).
        height: output height in pixels (``H``).
        width: output width in pixels (``W``).
        steps: denoising steps (``S``).
        text_len: prompt length in tokens (``L``).
        attention_density: ρ, the fraction of attention scores computed (1: dense).
        reused_steps: k, steps whose transformer forwards are reused from a cache (0: none).
        guided_fraction: τ, the fraction of steps, from the first, with guidance (1: all).
    """

    batch: WorkloadValue
    frames: WorkloadValue
    height: WorkloadValue
    width: WorkloadValue
    steps: WorkloadValue
    text_len: WorkloadValue
    attention_density: WhatIfValue = 1
    reused_steps: WorkloadValue = 0
    guided_fraction: WhatIfValue = 1

    def values(self) -> tuple[WorkloadValue, ...]:
        """The six values in the order of :data:`WORKLOAD_SYMBOLS`."""
        return (self.batch, self.frames, self.height, self.width, self.steps, self.text_len)

    def whatifs(self) -> tuple[WhatIfValue, ...]:
        """The three what-if values in the order of :data:`WHATIF_SYMBOLS`."""
        return (self.attention_density, self.reused_steps, self.guided_fraction)

    def inputs(self) -> tuple[WhatIfValue, ...]:
        """The nine values in the order of :data:`INPUT_SYMBOLS`: a compiled evaluator's arguments."""
        return (*self.values(), *self.whatifs())

    def subs(self) -> dict[sympy.Symbol, WorkloadValue]:
        """The values keyed by their symbols (what-ifs included), for ``expr.subs(workload.subs())``."""
        return dict(zip(INPUT_SYMBOLS, self.inputs(), strict=True))
