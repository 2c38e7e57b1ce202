"""Collectives over a link: the bytes each rank moves and the link they cross.

Model-independent formulas, in the workload symbols, for the collectives of sequence-parallel
and FSDP inference (xDiT USP, PyTorch FSDP):

- **all-to-all** (Ulysses, degree ``U``): a per-rank ``[batch, tokens/P, dim]`` tensor of which
  ``(U−1)/U`` leaves the rank;
- **ring pass** (degree ``R``): ``R − 1`` rounds, each passing a K and a V block of
  ``[batch, tokens/P, dim]`` to the neighbour;
- **all-gather** of parameters (FSDP): ``(P−1)/P`` of a unit's parameters arrive at each rank;
- **sequence all-gather**: ``P − 1`` shares of ``[batch, tokens/P, channels]`` arrive at each rank.

Sequences are padded to a multiple of ``P = U·R`` (:func:`tokens_per_rank`). Links: collectives run
at the device's GPU-GPU bandwidth per direction times the ``link`` factor when all ``P`` GPUs sit in
one link group (NVSwitch/xGMI baseboard), else at the host-link bandwidth times ``host_link`` (PCIe
through the host; contention between GPUs is not modelled). Factors are symbols
(:data:`~.efficiency.FACTOR_SYMBOLS`).
"""

from __future__ import annotations

from typing import Final

import sympy
from attrs import frozen

from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import factor_symbol
from llm_perf_opt.symbolic.dtypes import BF16, DType

__all__ = [
    "COLLECTIVE_DTYPE",
    "Link",
    "all_to_all_bytes",
    "link_for",
    "parameter_all_gather_bytes",
    "ring_pass_bytes",
    "sequence_all_gather_bytes",
    "tokens_per_rank",
]

COLLECTIVE_DTYPE: Final = BF16
"""Activations cross the links in bf16; FSDP gathers bf16 parameters."""


def tokens_per_rank(tokens: sympy.Expr, world: int) -> sympy.Expr:
    """``⌈L / P⌉``: the tokens each of ``P`` ranks holds, the sequence padded to a multiple of ``P``."""
    return sympy.ceiling(sympy.sympify(tokens) / world)


@frozen
class Link:
    """The link a collective crosses.

    Attributes:
        kind: which link (``NVLink4``, or the host link).
        bandwidth: bytes/s per direction at the datasheet figure.
        factor: the efficiency factor key that scales it (``link`` or ``host_link``).
    """

    kind: str
    bandwidth: float
    factor: str

    def seconds(self, nbytes: sympy.Expr) -> sympy.Expr:
        """Seconds to move ``nbytes`` per direction over the link, the factor as a symbol."""
        return sympy.sympify(nbytes) / sympy.Float(self.bandwidth) / factor_symbol(self.factor)


def link_for(accelerator: Accelerator, world: int) -> Link:
    """The GPU-GPU link when all ``world`` GPUs are in one link group, else the host link."""
    if accelerator.link_bandwidth > 0 and world <= accelerator.link_group_size:
        return Link(accelerator.link_kind, accelerator.link_bandwidth, "link")
    return Link(accelerator.host_link_kind, accelerator.host_link_bandwidth, "host_link")


def all_to_all_bytes(
    tokens: sympy.Expr,
    dim: int,
    *,
    degree: int,
    world: int,
    batch: sympy.Expr,
    count: int = 1,
    dtype: DType = COLLECTIVE_DTYPE,
) -> sympy.Expr:
    """Bytes one rank sends in ``count`` all-to-alls of a per-rank ``[batch, tokens/P, dim]``
    tensor over a group of ``degree`` ranks (``(degree−1)/degree`` of it leaves). Zero for degree 1."""
    per_tensor = batch * tokens_per_rank(tokens, world) * dim * dtype.size_bytes
    return count * sympy.Rational(degree - 1, degree) * per_tensor


def ring_pass_bytes(
    tokens: sympy.Expr,
    dim: int,
    *,
    degree: int,
    world: int,
    batch: sympy.Expr,
    dtype: DType = COLLECTIVE_DTYPE,
) -> sympy.Expr:
    """Bytes one rank sends in the ``degree − 1`` K/V rounds of one ring attention: each passes a K
    and a V block of ``[batch, tokens/P, dim]``. Zero for degree 1."""
    per_block = batch * tokens_per_rank(tokens, world) * dim * dtype.size_bytes
    return (degree - 1) * 2 * per_block


def parameter_all_gather_bytes(
    param_count: int, world: int, *, dtype: DType = COLLECTIVE_DTYPE
) -> sympy.Expr:
    """Bytes arriving at one rank when a unit of ``param_count`` parameters sharded over ``world``
    ranks is all-gathered."""
    return sympy.Rational(world - 1, world) * param_count * dtype.size_bytes


def sequence_all_gather_bytes(
    tokens: sympy.Expr, channels: int, *, world: int, batch: sympy.Expr, dtype: DType
) -> sympy.Expr:
    """Bytes arriving at one rank when a ``[batch, tokens/P, channels]`` tensor is gathered from
    every rank (``P − 1`` shares)."""
    return (world - 1) * batch * tokens_per_rank(tokens, world) * channels * dtype.size_bytes
