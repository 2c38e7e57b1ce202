"""The accepted range of every workload field and of the GPU count, in one table.

Upper limits are what the real pipeline could run, with margin where the code sets none:

- ``frames``, ``height``, ``width``: ``WanModel`` precomputes its rotary tables for 1024 positions
  on each of the three axes (``rope_params(1024, …)`` in ``wan/modules/model.py`` of Wan2.1; the
  same 1024 in diffusers' ``WanRotaryPosEmbed(max_seq_len=1024)``), so a latent of more than 1024
  frames, or more than 1024 patches along a side, cannot be run: at most ``4·1023 + 1 = 4093``
  frames and ``1024 · 2 · 8 = 16384`` pixels a side.
- ``text_len``: the umT5 tokenizer's ``max_length`` of 512 tokens, padded or not.
- ``batch``, ``steps``, GPUs: no limit in the code; the limits are 16× the largest published runs
  (batch 64, 1000 steps, 64 GPUs), so that every figure stays within a sane range.

Every check raises one :class:`~llm_perf_opt.errors.LlmPerfOptError` naming the field (under the
caller's name for it), the value and the accepted range.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import numpy as np
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "GPU_LIMIT",
    "ROPE_POSITIONS",
    "WORKLOAD_LIMITS",
    "FieldLimit",
    "check_field",
    "check_gpu_count",
    "validate_workload_arrays",
]

ROPE_POSITIONS: Final = 1024
"""Positions of each rotary table of the transformer (``rope_params(1024, …)``)."""


@frozen(kw_only=True)
class FieldLimit:
    """The accepted integers of one field.

    Attributes:
        field: the workload field (``batch``, ``frames``, …) or ``gpus``.
        minimum: the smallest accepted value.
        maximum: the largest accepted value.
        multiple: accepted values are multiples of this (1: any integer).
        why: where the maximum comes from, for the error message and the docs.
    """

    field: str
    minimum: int
    maximum: int
    multiple: int
    why: str

    def accepted(self) -> str:
        """The accepted range in words, e.g. ``an integer in 16…16384, a multiple of 16``."""
        words = f"an integer in {self.minimum}…{self.maximum}"
        return words if self.multiple == 1 else f"{words}, a multiple of {self.multiple}"

    def check(self, value: object, *, name: str | None = None) -> int:
        """``value`` as an int when it is an integer (not a bool) within this limit, else an error
        naming ``name`` (default the field)."""
        label = name or self.field
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise LlmPerfOptError(f"{label}: must be {self.accepted()}, got {_short(value)}")
        number = int(value)
        if number < self.minimum or number > self.maximum:
            raise LlmPerfOptError(f"{label}: must be {self.accepted()} ({self.why}), got {_short(number)}")
        if number % self.multiple:
            lower = max(self.minimum, number // self.multiple * self.multiple)
            raise LlmPerfOptError(
                f"{label}: must be a multiple of {self.multiple} ({self.why}), got {number}; "
                f"nearest valid: {lower} or {lower + self.multiple}"
            )
        return number


_SIZE_WHY = f"VAE stride 8 × patch 2; {ROPE_POSITIONS} rotary positions a side"
_PUBLISHED_WHY = "16× the largest published run"

WORKLOAD_LIMITS: Final[Mapping[str, FieldLimit]] = MappingProxyType(
    {
        limit.field: limit
        for limit in (
            FieldLimit(field="batch", minimum=1, maximum=1024, multiple=1, why=_PUBLISHED_WHY),
            FieldLimit(
                field="frames",
                minimum=1,
                maximum=4 * (ROPE_POSITIONS - 1) + 1,
                multiple=1,
                why=f"at most {ROPE_POSITIONS} latent frames",
            ),
            FieldLimit(field="height", minimum=16, maximum=16 * ROPE_POSITIONS, multiple=16, why=_SIZE_WHY),
            FieldLimit(field="width", minimum=16, maximum=16 * ROPE_POSITIONS, multiple=16, why=_SIZE_WHY),
            FieldLimit(field="steps", minimum=1, maximum=16_000, multiple=1, why=_PUBLISHED_WHY),
            FieldLimit(field="text_len", minimum=0, maximum=512, multiple=1, why="the tokenizer's limit"),
        )
    }
)
"""Limits of the six workload fields, keyed like :class:`~llm_perf_opt.symbolic.symbols.Workload`."""

GPU_LIMIT: Final = FieldLimit(field="gpus", minimum=1, maximum=1024, multiple=1, why=_PUBLISHED_WHY)
"""The GPU count of a deployment."""


def check_field(field: str, value: object, *, name: str | None = None) -> int:
    """Check one workload field against :data:`WORKLOAD_LIMITS` (see :meth:`FieldLimit.check`)."""
    return WORKLOAD_LIMITS[field].check(value, name=name)


def check_gpu_count(value: object, *, name: str = "gpus") -> int:
    """Check a GPU count against :data:`GPU_LIMIT`."""
    return GPU_LIMIT.check(value, name=name)


def validate_workload_arrays(values: Mapping[str, Any]) -> None:
    """Check arrays of workload values, vectorised: numbers, finite, integer-valued, within
    :data:`~llm_perf_opt.wan2_1.limits.WORKLOAD_LIMITS` and multiples where the field requires
    (height and width of 16).

    The first failing field is one error naming it, the first bad value and how many are bad, e.g.
    ``height: 3 of 200 values are not an integer in 16…16384, a multiple of 16; first: 17``. Works
    on numpy arrays and on dask arrays (the checks are reductions computed chunk by chunk).
    """
    for name, value in values.items():
        if name not in WORKLOAD_LIMITS:
            raise LlmPerfOptError(f"{name}: unknown workload field; accepted: {', '.join(WORKLOAD_LIMITS)}")
        limit = WORKLOAD_LIMITS[name]
        array = value if hasattr(value, "__dask_graph__") else np.asarray(value)
        kind = np.dtype(array.dtype).kind
        if kind not in "iuf":
            raise LlmPerfOptError(
                f"{name}: must be numbers ({limit.accepted()}), got an array of {array.dtype}"
            )
        with np.errstate(invalid="ignore"):
            good = np.isfinite(array) & (array == np.floor(array))
            good &= (array >= limit.minimum) & (array <= limit.maximum)
            if limit.multiple > 1:
                good &= np.fmod(array, limit.multiple) == 0
        bad = ~good
        count = int(bad.sum())
        if count:
            first = array.ravel()[int(np.argmax(bad.ravel()))]
            shown = float(first)
            text = f"{int(shown)}" if np.isfinite(shown) and shown == int(shown) else f"{shown!r}"
            raise LlmPerfOptError(
                f"{name}: {count} of {int(np.prod(array.shape))} values are not {limit.accepted()}; "
                f"first: {text}"
            )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"
