"""The six workload symbols, defined once, and the workload that gives them values.

Every cost expression of the library is written in these symbols and no others. Sizes derived from
them (token counts, latent frames) are named helpers in the model layers, built from these symbols.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import sympy
from attrs import frozen

__all__ = ["WORKLOAD_SYMBOLS", "B", "F", "H", "L", "S", "W", "Workload", "WorkloadValue"]

B = sympy.Symbol("batch", integer=True, positive=True)
F = sympy.Symbol("frames", integer=True, positive=True)
H = sympy.Symbol("height", integer=True, positive=True)
W = sympy.Symbol("width", integer=True, positive=True)
S = sympy.Symbol("steps", integer=True, positive=True)
L = sympy.Symbol("text_len", integer=True, nonnegative=True)

# The order of a compiled evaluator's arguments and of Workload.values().
WORKLOAD_SYMBOLS: tuple[sympy.Symbol, ...] = (B, F, H, W, S, L)

WorkloadValue: TypeAlias = int | np.integer[Any] | npt.NDArray[Any]


@frozen(kw_only=True, eq=False)
class Workload:
    """Values for the six workload symbols: Python ints, or numpy arrays that broadcast together.

    A workload of ints is one point and can be evaluated exactly; arrays describe a grid of points
    (e.g. ``frames=np.arange(1, 200)[:, None]`` with ``height=np.array([480, 720])[None, :]``).
    No range checks happen here: workloads are validated where they enter the library.

    Attributes:
        batch: videos generated together (``B``).
        frames: output video frames (``F``).
        height: output height in pixels (``H``).
        width: output width in pixels (``W``).
        steps: denoising steps (``S``).
        text_len: prompt length in tokens (``L``).
    """

    batch: WorkloadValue
    frames: WorkloadValue
    height: WorkloadValue
    width: WorkloadValue
    steps: WorkloadValue
    text_len: WorkloadValue

    def values(self) -> tuple[WorkloadValue, ...]:
        """The six values in the order of :data:`WORKLOAD_SYMBOLS`."""
        return (self.batch, self.frames, self.height, self.width, self.steps, self.text_len)

    def subs(self) -> dict[sympy.Symbol, WorkloadValue]:
        """The values keyed by their symbols, for ``expr.subs(workload.subs())``."""
        return dict(zip(WORKLOAD_SYMBOLS, self.values(), strict=True))
