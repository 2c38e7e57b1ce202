"""Multi-GPU inference as Wan2.1 runs it: Ulysses × ring sequence parallelism (xDiT USP) and FSDP.

What the official code does (``wan/distributed/xdit_context_parallel.py``,
``wan/distributed/fsdp.py``) and how it is priced here:

- **Sequence split.** The video tokens are padded to a multiple of ``P = U·R`` and every rank holds
  ``L_pad / P`` of them through all blocks and the head. All token-proportional work is divided:
  a rank's share is the single-GPU cost at ``L_pad / P`` tokens (:class:`SequenceShard`). The
  self-attention core is the exception: each rank attends its ``L_pad / P`` queries to all
  ``L_pad`` keys (after the all-to-alls it holds the whole sequence for ``n/U`` heads), so its FLOPs
  are the full ``L_pad`` attention divided by ``P``. Replicated work is not divided: the patch
  embedding (on the full latent), the time and text embeddings, the cross-attention keys and values
  of the text (and image) context, and the unpatchify after the final gather.
- **Ulysses** (degree ``U``, heads divisible by ``U``): four all-to-alls per self-attention (q, k, v
  scatter heads and gather the sequence; the output goes back), each of a per-rank
  ``[B, L_pad/P, D]`` bf16 tensor of which ``(U−1)/U`` leaves the rank.
- **Ring** (degree ``R``): ``R − 1`` rounds per self-attention, each passing a K and a V block of
  ``[B, L_pad/P, D]`` bf16 to the neighbour.
- **FSDP** (``--dit_fsdp``): each block's parameters are all-gathered in bf16 once per forward
  (``(P−1)/P`` of them arrive at each rank), and the root unit (embeddings, head) once.
- **Head gather**: ``all_gather`` of the head output ``[B, L_pad/P, 64]`` fp32.
- **Links**: collectives run at the device's GPU-GPU bandwidth per direction times the ``link``
  factor when all ``P`` GPUs sit in one link group (NVSwitch/xGMI baseboard), else at the host-link
  bandwidth times ``host_link`` (PCIe through the host; contention between GPUs is not modelled).
- **Overlap** (:class:`Overlap`): the all-to-alls are on the critical path (the attention needs
  their result). Ring passes overlap the attention of the previous block of keys (ring flash
  attention), so a self-attention costs ``max(attention, ring passes)``. FSDP all-gathers are
  issued ahead on their own stream (the CPU runs ahead of the GPU), so a block costs
  ``max(block, its all-gather)``; the root unit's gather at the start of a forward is exposed.
- There is no CFG, tensor or pipeline parallelism: every rank runs every forward.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import sympy
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable
from llm_perf_opt.hardware.roofline import (
    DEFAULT_POLICY,
    PrecisionPolicy,
    TimeModel,
    compile_seconds,
    time_model,
)
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BF16, FP32, DType
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree, OpKind
from llm_perf_opt.symbolic.symbols import B, H, Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.geometry import video_tokens
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.variants import WanVariant

__all__ = [
    "COLLECTIVE_DTYPE",
    "DEFAULT_OVERLAP",
    "SINGLE_GPU",
    "Link",
    "Overlap",
    "ParallelTime",
    "Parallelism",
    "SequenceShard",
    "check_parallelism",
    "dit_parallel_time",
    "dit_sequence_shard",
    "fsdp_all_gather_bytes",
    "fsdp_all_gather_seconds",
    "link_for",
    "padded_tokens",
    "ring_pass_bytes",
    "ring_pass_seconds",
    "sequence_all_gather_bytes",
    "sequence_all_gather_seconds",
    "tokens_per_rank",
    "ulysses_all_to_all_bytes",
    "ulysses_all_to_all_seconds",
]

FloatArray = npt.NDArray[np.float64]

COLLECTIVE_DTYPE: Final = BF16
"""q, k, v and the attention output cross the links in bf16; FSDP gathers bf16 parameters."""
ALL_TO_ALLS_PER_SELF_ATTENTION: Final = 4
"""q, k and v (scatter heads, gather the sequence) and the output (back)."""
HEAD_OUT_DTYPE: Final = FP32
"""The head runs in the fp32 autocast region; its output is gathered in fp32."""
FSDP_UNITS_IN_FLIGHT: Final = 2
"""FSDP's rate limiter allows two all-gathered units at a time: the running block and the next."""


def _degree(_instance: object, attribute: Any, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LlmPerfOptError(f"{attribute.name}: must be an integer ≥ 1, got {value!r}")


def _flag(_instance: object, attribute: Any, value: object) -> None:
    if not isinstance(value, bool):
        raise LlmPerfOptError(f"{attribute.name}: must be true or false, got {value!r}")


@frozen
class Parallelism:
    """How the official code splits one run over ``ulysses × ring`` GPUs.

    Attributes:
        ulysses: Ulysses degree ``U`` (``--ulysses_size``).
        ring: ring degree ``R`` (``--ring_size``).
        fsdp: transformer weights sharded with FSDP (``--dit_fsdp``).
    """

    ulysses: int = field(default=1, validator=_degree)
    ring: int = field(default=1, validator=_degree)
    fsdp: bool = field(default=False, validator=_flag)

    def __attrs_post_init__(self) -> None:
        if self.fsdp and self.world_size == 1:
            raise LlmPerfOptError(
                "fsdp: FSDP needs more than one GPU (the official generate.py rejects it on one); "
                f"got ulysses={self.ulysses}, ring={self.ring}"
            )

    @property
    def world_size(self) -> int:
        """GPUs in the run, ``P = U·R``."""
        return self.ulysses * self.ring


SINGLE_GPU: Final = Parallelism()
"""One GPU: no sequence split, no FSDP."""


def check_parallelism(parallelism: Parallelism, *, num_heads: int) -> None:
    """Reject degrees the official code rejects: heads must divide by the Ulysses degree."""
    if num_heads % parallelism.ulysses:
        divisors = [d for d in range(1, num_heads + 1) if num_heads % d == 0]
        raise LlmPerfOptError(
            f"ulysses: {num_heads} attention heads cannot be split {parallelism.ulysses} ways; "
            f"accepted Ulysses degrees: {', '.join(map(str, divisors))} (use ring for the rest)"
        )


def padded_tokens(tokens: sympy.Expr, parallelism: Parallelism) -> sympy.Expr:
    """``L_pad = ⌈L / P⌉ · P``: the sequence padded to a multiple of ``U·R``."""
    world = parallelism.world_size
    return sympy.ceiling(sympy.sympify(tokens) / world) * world


def tokens_per_rank(tokens: sympy.Expr, parallelism: Parallelism) -> sympy.Expr:
    """``L_pad / P = ⌈L / P⌉``: the tokens each rank holds."""
    return sympy.ceiling(sympy.sympify(tokens) / parallelism.world_size)


@frozen
class Link:
    """The bandwidth collectives run at, per direction, after the efficiency factor.

    Attributes:
        kind: which link (``NVLink4``, or the host link).
        bandwidth: bytes/s per direction actually reached.
    """

    kind: str
    bandwidth: float


def link_for(
    accelerator: Accelerator, parallelism: Parallelism, efficiencies: EfficiencyTable = EFFICIENCIES
) -> Link:
    """The GPU-GPU link when all ``P`` GPUs are in one link group, else the host link."""
    efficiency = efficiencies.for_device(accelerator)
    if accelerator.link_bandwidth > 0 and parallelism.world_size <= accelerator.link_group_size:
        return Link(accelerator.link_kind, accelerator.link_bandwidth * efficiency.factor("link"))
    return Link(accelerator.host_link_kind, accelerator.host_link_bandwidth * efficiency.factor("host_link"))


def _fraction(numerator: int, denominator: int) -> sympy.Rational:
    return sympy.Rational(numerator, denominator)


def ulysses_all_to_all_bytes(
    tokens: sympy.Expr,
    dim: int,
    parallelism: Parallelism,
    *,
    batch: sympy.Expr = B,
    dtype: DType = COLLECTIVE_DTYPE,
) -> sympy.Expr:
    """Bytes one rank sends in the four all-to-alls of one self-attention.

    Each moves a per-rank ``[batch, L_pad/P, dim]`` tensor, of which ``(U−1)/U`` goes to the
    other ranks of the Ulysses group. Zero without Ulysses.
    """
    u = parallelism.ulysses
    per_tensor = batch * tokens_per_rank(tokens, parallelism) * dim * dtype.size_bytes
    return ALL_TO_ALLS_PER_SELF_ATTENTION * _fraction(u - 1, u) * per_tensor


def ulysses_all_to_all_seconds(
    tokens: sympy.Expr, dim: int, parallelism: Parallelism, link: Link, *, batch: sympy.Expr = B
) -> sympy.Expr:
    """Seconds of the four all-to-alls of one self-attention (each rank sends and receives alike)."""
    return ulysses_all_to_all_bytes(tokens, dim, parallelism, batch=batch) / sympy.Float(link.bandwidth)


def ring_pass_bytes(
    tokens: sympy.Expr,
    dim: int,
    parallelism: Parallelism,
    *,
    batch: sympy.Expr = B,
    dtype: DType = COLLECTIVE_DTYPE,
) -> sympy.Expr:
    """Bytes one rank sends in the ``R − 1`` K/V rounds of one self-attention.

    A round passes a K and a V block of ``[batch, L_pad/R, dim/U]`` = ``[batch, L_pad/P, dim]``
    elements. Zero without ring.
    """
    per_block = batch * tokens_per_rank(tokens, parallelism) * dim * dtype.size_bytes
    return (parallelism.ring - 1) * 2 * per_block


def ring_pass_seconds(
    tokens: sympy.Expr, dim: int, parallelism: Parallelism, link: Link, *, batch: sympy.Expr = B
) -> sympy.Expr:
    """Seconds of the ring K/V passes of one self-attention, if nothing overlapped them."""
    return ring_pass_bytes(tokens, dim, parallelism, batch=batch) / sympy.Float(link.bandwidth)


def fsdp_all_gather_bytes(
    param_count: int, parallelism: Parallelism, *, dtype: DType = COLLECTIVE_DTYPE
) -> sympy.Expr:
    """Bytes arriving at one rank when an FSDP unit of ``param_count`` parameters is all-gathered.

    Zero without FSDP.
    """
    if not parallelism.fsdp:
        return sympy.Integer(0)
    world = parallelism.world_size
    return _fraction(world - 1, world) * param_count * dtype.size_bytes


def fsdp_all_gather_seconds(param_count: int, parallelism: Parallelism, link: Link) -> sympy.Expr:
    """Seconds of one FSDP unit's all-gather."""
    return fsdp_all_gather_bytes(param_count, parallelism) / sympy.Float(link.bandwidth)


def sequence_all_gather_bytes(
    tokens: sympy.Expr,
    channels: int,
    parallelism: Parallelism,
    *,
    batch: sympy.Expr = B,
    dtype: DType = HEAD_OUT_DTYPE,
) -> sympy.Expr:
    """Bytes arriving at one rank when a ``[batch, L_pad/P, channels]`` tensor is gathered from every
    rank (``P−1`` shares)."""
    world = parallelism.world_size
    share = batch * tokens_per_rank(tokens, parallelism) * channels * dtype.size_bytes
    return (world - 1) * share


def sequence_all_gather_seconds(
    tokens: sympy.Expr,
    channels: int,
    parallelism: Parallelism,
    link: Link,
    *,
    batch: sympy.Expr = B,
    dtype: DType = HEAD_OUT_DTYPE,
) -> sympy.Expr:
    """Seconds of gathering a ``[batch, L_pad/P, channels]`` tensor from every rank (``P−1`` shares
    arrive at each)."""
    nbytes = sequence_all_gather_bytes(tokens, channels, parallelism, batch=batch, dtype=dtype)
    return nbytes / sympy.Float(link.bandwidth)


@frozen(eq=False)
class SequenceShard:
    """The per-rank cost of a sequence-parallel run, as a :class:`~.roofline.CostAdjustment`.

    Token-proportional costs are taken at ``L_pad / P`` tokens by scaling the height symbol: every
    token count of the module is ``∝ H`` (checked on construction for ``tokens``), and the weights,
    the text context and the other constants do not depend on ``H``. The self-attention core of the
    ``sequence_attention`` modules attends ``L_pad/P`` queries to ``L_pad`` keys: its FLOPs (and
    score work) are ``P ×`` the scaled ones. The own ops of ``replicated`` modules stay whole.

    Attributes:
        parallelism: the degrees.
        tokens: the sequence length expression being split (the DiT's video tokens).
        replicated: ids of the modules whose own ops every rank runs in full.
        sequence_attention: ids of the modules whose fused attention is the sequence-parallel one.
    """

    parallelism: Parallelism
    tokens: sympy.Expr
    replicated: frozenset[str]
    sequence_attention: frozenset[str]
    _scale: sympy.Expr = field(init=False)

    def __attrs_post_init__(self) -> None:
        doubled = sympy.expand(self.tokens.subs(H, 2 * H) - 2 * self.tokens)
        if doubled != 0:
            raise LlmPerfOptError(
                f"tokens: the split sequence must be proportional to the height symbol, got {self.tokens}"
            )
        ratio = tokens_per_rank(self.tokens, self.parallelism) / self.tokens
        object.__setattr__(self, "_scale", H * ratio)

    def key(self, node: ModuleNode) -> Hashable:
        if node.id in self.replicated:
            return "replicated"
        return "sequence_attention" if node.id in self.sequence_attention else "sharded"

    def __call__(self, node: ModuleNode, kind: OpKind, cost: Cost) -> Cost:
        if self.parallelism.world_size == 1 or node.id in self.replicated:
            return cost
        scaled = Cost(**{name: expr.subs(H, self._scale) for name, expr in cost})
        if node.id in self.sequence_attention and kind[0].startswith("_scaled_dot_product_"):
            world = self.parallelism.world_size
            return Cost(
                flops=world * scaled.flops,
                vector_flops=world * scaled.vector_flops,
                bytes_read=scaled.bytes_read,
                bytes_written=scaled.bytes_written,
                weight_bytes=scaled.weight_bytes,
                params=scaled.params,
                activation_bytes=scaled.activation_bytes,
            )
        return scaled


def _blocks(tree: ModuleTree) -> ModuleNode:
    for node in tree:
        if node.repetition == "for" and node.parent_id == tree.root_id:
            return node
    raise LlmPerfOptError(f"tree: {tree.root_id!r} has no repeated blocks under its root")


def dit_sequence_shard(
    tree: ModuleTree, parallelism: Parallelism, *, root_id: str | None = None
) -> SequenceShard:
    """The :class:`SequenceShard` of a Wan2.1 DiT tree: the root's own ops (timestep sinusoid,
    unpatchify after the gather) and the patch embedding are replicated; every block's
    ``WanSelfAttention`` holds the sequence-parallel attention. ``root_id`` names the transformer's
    node when it is not the tree's root (a pipeline tree's ``diffusion``)."""
    root = tree[root_id] if root_id is not None else tree.root
    replicated = {root.id}
    for node in tree:
        if node.class_name == "Conv3d" and node.parent_id == root.id:
            replicated.add(node.id)
    attention = {node.id for node in tree if node.class_name == "WanSelfAttention"}
    return SequenceShard(parallelism, video_tokens(), frozenset(replicated), frozenset(attention))


@frozen
class Overlap:
    """What communication hides behind compute.

    Attributes:
        ring_with_attention: ring K/V passes overlap the attention (ring flash attention).
        fsdp_with_compute: a block's FSDP all-gather overlaps the previous block's compute.
    """

    ring_with_attention: bool = True
    fsdp_with_compute: bool = True


DEFAULT_OVERLAP: Final = Overlap()
"""Ring passes hidden behind attention, FSDP all-gathers behind the previous block."""


@frozen(kw_only=True, eq=False)
class ParallelTime:
    """Per-rank time of one transformer forward under sequence parallelism and FSDP (seconds).

    Attributes:
        parallelism: the degrees.
        link: the link collectives use.
        overlap: the overlap assumption.
        compute: the per-rank roofline of every module (no communication).
        communication: per forward, each collective's total time before overlap:
            ``ulysses_all_to_all``, ``ring_kv``, ``fsdp_all_gather``, ``head_all_gather``.
        forward_seconds: one forward on one rank: compute plus what communication is not hidden.
    """

    parallelism: Parallelism
    link: Link
    overlap: Overlap
    compute: TimeModel
    communication: Mapping[str, sympy.Expr]
    forward_seconds: sympy.Expr

    def evaluate(self, workload: Workload) -> dict[str, FloatArray]:
        """``forward``, ``compute`` and each collective, as float64 arrays over the workload."""
        names = ("forward", "compute", *self.communication)
        expressions = (self.forward_seconds, self.compute.root_seconds, *self.communication.values())
        function = compile_seconds(tuple(sympy.sympify(e) for e in expressions))
        inputs = [np.asarray(value, dtype=np.float64) for value in workload.values()]
        shape = np.broadcast_shapes(*(a.shape for a in inputs))
        with np.errstate(all="ignore"):
            outputs = function(*inputs)
        return {
            n: np.broadcast_to(np.asarray(o, dtype=np.float64), shape)
            for n, o in zip(names, outputs, strict=True)
        }

    def evaluate_point(self, workload: Workload) -> dict[str, float]:
        """As :meth:`evaluate` for one workload, as Python floats."""
        return {name: float(value) for name, value in self.evaluate(workload).items()}


def dit_parallel_time(
    variant: WanVariant,
    implementation: Implementation,
    accelerator: Accelerator,
    parallelism: Parallelism,
    *,
    efficiencies: EfficiencyTable = EFFICIENCIES,
    attention_kernel: str = "fa2",
    policy: PrecisionPolicy = DEFAULT_POLICY,
    overlap: Overlap = DEFAULT_OVERLAP,
) -> ParallelTime:
    """Per-rank time of one DiT forward of ``variant`` on ``P = U·R`` devices.

    Raises when the heads do not divide by the Ulysses degree. With ``P = 1`` it equals the
    single-GPU :func:`~.roofline.time_model` of the tree.
    """
    check_parallelism(parallelism, num_heads=variant.num_heads)
    tree = dit_tree(variant, implementation)
    shard = dit_sequence_shard(tree, parallelism)
    compute = time_model(
        tree, accelerator, efficiencies, attention_kernel=attention_kernel, policy=policy, adjust=shard
    )
    link = link_for(accelerator, parallelism, efficiencies)
    tokens = video_tokens()
    blocks = _blocks(tree)
    count = blocks.repetition_count or 1
    block = tree[blocks.children[0]]
    self_attention = next(tree[c] for c in block.children if tree[c].class_name == "WanSelfAttention")
    block_params = int(block.aggregate.params)
    root_params = int(tree.root.aggregate.params) - count * block_params
    head_out = variant.out_dim * variant.patch_size[0] * variant.patch_size[1] * variant.patch_size[2]

    all_to_all = ulysses_all_to_all_seconds(tokens, variant.dim, parallelism, link)
    ring = ring_pass_seconds(tokens, variant.dim, parallelism, link)
    gather = fsdp_all_gather_seconds(block_params, parallelism, link)
    root_gather = fsdp_all_gather_seconds(root_params, parallelism, link)
    head_gather = (
        sequence_all_gather_seconds(tokens, head_out, parallelism, link)
        if parallelism.world_size > 1
        else sympy.Integer(0)
    )

    attention = compute.own_seconds[self_attention.id]
    exposed_ring = sympy.Max(attention, ring) - attention if overlap.ring_with_attention else ring
    block_time = compute.seconds[block.id] + all_to_all + exposed_ring
    if parallelism.fsdp:
        block_time = sympy.Max(block_time, gather) if overlap.fsdp_with_compute else block_time + gather
    rest = compute.root_seconds - compute.seconds[blocks.id]
    forward = rest + count * block_time + head_gather + root_gather
    communication = {
        "ulysses_all_to_all": count * all_to_all,
        "ring_kv": count * ring,
        "fsdp_all_gather": count * gather + root_gather,
        "head_all_gather": head_gather,
    }
    return ParallelTime(
        parallelism=parallelism,
        link=link,
        overlap=overlap,
        compute=compute,
        communication=MappingProxyType(communication),
        forward_seconds=forward,
    )
