"""Which expert runs which step: the A14B boundary rule as a closed form in the step count ``S``.

The official sampler (``wan/text2video.py``, ``wan/image2video.py`` of Wan-Video/Wan2.2, with
``FlowUniPCMultistepScheduler`` of ``wan/utils/fm_solvers_unipc.py``) builds ``S`` timesteps

- ``σ_i = σ_max·(1 − i/S)``, ``i = 0 … S − 1`` (``np.linspace(σ_max, 0, S + 1)[:-1]``), with
  ``σ_max = 1 − 1/1000`` held in float32 (the first of the scheduler's training sigmas);
- shifted, ``σ'_i = s·σ_i / (1 + (s − 1)·σ_i)`` (``sample_shift`` s);
- ``t_i = int64(1000·σ'_i)``;

and runs the high-noise expert at every step with ``t_i ≥ boundary·1000``, the low-noise expert at
the others. ``t_i`` is an integer, so the test is ``1000·σ'_i ≥ β = ⌈1000·boundary⌉``; ``σ'`` grows
with ``σ``, so it is ``σ_i ≥ σ_b = b/(s − (s − 1)·b)`` with ``b = β/1000``, i.e.
``i ≤ S·(1 − σ_b/σ_max)``. Counting ``i`` from 0:

    high(S) = max(0, min(S, ⌊S·(1 − σ_b/σ_max)⌋ + 1)),   low(S) = S − high(S).

Exact in rationals; the float64 arithmetic of the real schedule could only differ where ``1000·σ'_i``
lands on an integer within rounding, which the tests look for over many step counts, shifts and
boundaries (none found).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np
import sympy
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.symbols import S

__all__ = ["ExpertSteps", "expert_steps", "sigma_max"]


def sigma_max(num_train_timesteps: int = 1000) -> sympy.Rational:
    """``σ_max``: the scheduler's first training sigma ``1 − 1/N`` as float32 holds it, exactly."""
    return sympy.Rational(Fraction(float(np.float32(1 - 1 / num_train_timesteps))))


@frozen
class ExpertSteps:
    """Steps each A14B expert runs, as expressions in ``S`` (their sum is ``S``)."""

    high_noise: sympy.Expr
    """Steps of ``high_noise_model`` (the first ones)."""
    low_noise: sympy.Expr
    """Steps of ``low_noise_model`` (the rest)."""


def _exact(value: float) -> sympy.Rational:
    """The decimal a float prints as, as a rational (``0.9`` is 9/10, not its binary neighbour)."""
    return sympy.Rational(Fraction(str(value)))


@functools.cache
def expert_steps(boundary: float, shift: float, num_train_timesteps: int = 1000) -> ExpertSteps:
    """The step split at ``boundary`` (a fraction in (0, 1)) and flow shift ``shift`` (> 0).

    Values are read as the decimals they print as (``0.875``, ``12.0``). Out-of-range input is an
    :class:`LlmPerfOptError` naming the field and what is accepted.
    """
    if isinstance(boundary, bool) or not isinstance(boundary, int | float) or not 0 < boundary < 1:
        raise LlmPerfOptError(f"boundary: must be a number in (0, 1), got {boundary!r}")
    if isinstance(shift, bool) or not isinstance(shift, int | float) or not shift > 0:
        raise LlmPerfOptError(f"sample_shift: must be a positive number, got {shift!r}")
    steps_trained = num_train_timesteps
    if isinstance(steps_trained, bool) or not isinstance(steps_trained, int) or steps_trained < 2:
        raise LlmPerfOptError(f"num_train_timesteps: must be an integer ≥ 2, got {num_train_timesteps!r}")
    b = _exact(boundary)
    s = _exact(shift)
    threshold = sympy.ceiling(num_train_timesteps * b) / num_train_timesteps
    sigma_b = threshold / (s - (s - 1) * threshold)
    high = sympy.Max(0, sympy.Min(S, sympy.floor(S * (1 - sigma_b / sigma_max(num_train_timesteps))) + 1))
    return ExpertSteps(high_noise=high, low_noise=S - high)
