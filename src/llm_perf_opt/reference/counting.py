"""FLOPs and bytes of one forward of a real module, per module and per aten op.

One forward runs under PyTorch's :class:`~torch.utils.flop_counter.FlopCounterMode` (the FLOP reference)
and, next to it, a small byte counter (:class:`ByteCounterMode`). Both attribute every aten op to every
module on the call stack (``torch.utils.module_tracker.ModuleTracker``), so a module's numbers include
its children's: they are *inclusive*. Module names are ``named_modules()`` names of the measured root
(``""`` is the root itself, ``blocks.0.attn1.to_q`` a leaf). A container that never runs ``forward``
(``nn.ModuleList``) has no entry; a module that ran no counted op has none either.

FLOP convention (FlopCounterMode's): 2 per multiply-accumulate of mm / addmm / bmm / convolution and of
the attention core; bias, norms, activations, softmax and element-wise work count 0. On the CPU the
fused attention op ``aten._scaled_dot_product_flash_attention_for_cpu`` has no formula in torch, so it
is mapped to :func:`torch.utils.flop_counter.sdpa_flop_count` (``4·B·H·S_q·S_k·D``).

Byte convention (eager, op by op, nothing fused beyond the op itself):

- an op reads every tensor argument and writes every tensor it returns, each at the elements it
  stores times ``element_size``: a broadcast (expanded) input counts once, its stride-0 dimensions
  at size 1, as a kernel reads such an operand from the same addresses;
- views and aliases move nothing (``view``, ``_unsafe_view``, ``_reshape_alias``, ``t``, ``slice``...);
- ``copy_``, ``fill_`` and ``zero_`` do not read their destination; an in-place op such as ``add_``
  reads and writes ``self``;
- ``empty*`` allocations move nothing; ``*_like`` and ``new_*`` factories read nothing;
- ``embedding`` (a gather) reads its indices and the rows it gathers, not the whole table;
- nearest upsampling of a strided input (neither contiguous nor channels-last) also reads and writes
  the contiguous copy of it that the CUDA kernel makes first;
- ``constant_pad_nd`` (``F.pad``) with a positive pad runs ``empty``, ``fill_`` of the whole padded
  output and ``copy_`` of the input into its interior (``constant_pad_nd`` in
  ``aten/src/ATen/native/PadNd.cpp``, a composite on every device; the profiler shows the three
  ops): it reads the input (less any crop) and writes the padded output plus the interior again.
  Without a positive pad it is a ``clone`` of what remains of the input.

With ``fused_rms_norm`` (:class:`FusedRMSNorm`), ``F.rms_norm`` counts as the one op a CUDA build
dispatches it to, ``aten._fused_rms_norm`` (reads x and the weight, writes y and an fp32 ``rstd`` per
row), where the CPU and meta builds run its composite (``_to_copy, pow, mean, add_, rsqrt, mul, mul,
_to_copy``). PyTorch's ``rms_norm_symint`` (``aten/src/ATen/native/layer_norm.cpp``) sends the call to
``at::_fused_rms_norm`` unless the input is complex or channels-last, or the weight's dtype differs
from the input's; only the CUDA (and MPS) builds register a kernel for that op, elsewhere it is
``CompositeImplicitAutograd`` (``torch._C._dispatch_dump("aten::_fused_rms_norm")``).

With ``fused_sdpa`` (:class:`FusedSDPA`), ``F.scaled_dot_product_attention`` runs as the single fused
CPU op: it reads q, k, v and writes the output plus an fp32 log-sum-exp of ``B·H·S_q`` elements — the
traffic of a flash-attention kernel. Without it, the meta device runs the math decomposition, whose
bytes include the ``S_q × S_k`` score matrices (the FLOPs are the same).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, cast

import torch
from attrs import field, frozen
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count
from torch.utils.module_tracker import ModuleTracker

from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "CPU_FLASH_SDPA",
    "ByteCounterMode",
    "FusedRMSNorm",
    "FusedSDPA",
    "Measurement",
    "OpCost",
    "exclusive_costs",
    "measure_forward",
    "op_bytes",
    "read_only",
]

aten = torch.ops.aten

CPU_FLASH_SDPA: Final = aten._scaled_dot_product_flash_attention_for_cpu
"""The fused attention op the CPU (and the meta device, through :class:`FusedSDPA`) dispatches."""

GLOBAL_KEY: Final = "Global"
"""ModuleTracker's key for "every op", whatever module ran it."""

_VIEWS_WITHOUT_ALIAS_SCHEMA: Final = frozenset({aten._unsafe_view, aten._reshape_alias})
"""Views whose schemas do not mark their output as an alias of the input."""

_ALLOCATIONS: Final = frozenset(
    {
        aten.empty,
        aten.empty_like,
        aten.empty_strided,
        aten.empty_permuted,
        aten.new_empty,
        aten.new_empty_strided,
    }
)
"""Uninitialised allocations: no bytes read or written."""

_FACTORIES_FROM_METADATA: Final = frozenset(
    {aten.zeros_like, aten.ones_like, aten.full_like, aten.new_zeros, aten.new_ones, aten.new_full}
)
"""Factories whose tensor argument only gives shape and dtype: nothing read, the result written."""

_DESTINATION_NOT_READ: Final = frozenset({aten.copy_, aten.fill_, aten.zero_})
"""In-place ops that overwrite their first argument without reading it."""

_CONTIGUOUS_INPUT_ON_CUDA: Final = frozenset({aten._upsample_nearest_exact2d, aten.upsample_nearest2d})
"""Ops whose CUDA kernel first makes a strided input contiguous (``input_.contiguous()`` on the NCHW
path of ``upsample_nearest2d_out_cuda_template``, ``aten/src/ATen/native/cuda/UpSampleNearest2d.cu``)
unless it is contiguous or channels-last: one more read and write of the input."""


def read_only(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy (the records are frozen, so are their tables)."""
    return MappingProxyType(dict(mapping))


@frozen
class OpCost:
    """FLOPs and bytes of some aten ops."""

    flops: int = 0
    """Floating-point operations, 2 per multiply-accumulate (FlopCounterMode's convention)."""
    bytes_read: int = 0
    """Bytes of the tensor arguments read (see the module docstring for the convention)."""
    bytes_written: int = 0
    """Bytes of the tensors produced or overwritten."""

    def __add__(self, other: OpCost) -> OpCost:
        return OpCost(
            self.flops + other.flops,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
        )

    def __sub__(self, other: OpCost) -> OpCost:
        return OpCost(
            self.flops - other.flops,
            self.bytes_read - other.bytes_read,
            self.bytes_written - other.bytes_written,
        )


def _sum(costs: Iterable[OpCost]) -> OpCost:
    total = OpCost()
    for cost in costs:
        total = total + cost
    return total


@frozen(kw_only=True)
class Measurement:
    """One forward of a real module, measured per module and per aten op.

    ``by_module`` is inclusive (a module's entry holds its children's ops), keyed by ``named_modules()``
    name with ``""`` for the root, then by aten op packet name (``aten.addmm``).
    """

    root_class: str
    """Class name of the measured module, e.g. ``WanTransformer3DModel``."""
    inputs: Mapping[str, tuple[str, tuple[int, ...]]] = field(converter=read_only)
    """Each input tensor's dtype and shape, by argument name."""
    by_module: Mapping[str, Mapping[str, OpCost]] = field(converter=read_only)
    """Inclusive cost of every module that ran a counted op, per aten op."""
    totals: Mapping[str, OpCost] = field(converter=read_only)
    """Cost of the whole forward per aten op."""
    parameters: Mapping[str, int] = field(converter=read_only)
    """Elements of every parameter, by ``named_parameters()`` name."""
    module_classes: Mapping[str, str] = field(converter=read_only)
    """Qualified class name of every ``named_modules()`` entry, ran or not (``torch.nn.Linear``...)."""
    fused_sdpa: bool
    """Whether attention ran as the fused CPU op (:class:`FusedSDPA`) or as the math decomposition."""
    seconds: float
    """Wall time of the counted forward."""
    fused_rms_norm: bool = True
    """Whether ``F.rms_norm`` counted as the CUDA build's fused op (:class:`FusedRMSNorm`)."""

    def module_cost(self, fqn: str) -> OpCost:
        """Inclusive cost of one module, summed over its ops (zero for a module that ran none)."""
        return _sum(self.by_module.get(fqn, {}).values())

    @property
    def total(self) -> OpCost:
        """Cost of the whole forward."""
        return _sum(self.totals.values())

    @property
    def flops(self) -> dict[str, int]:
        """Inclusive FLOPs per module, summed over ops."""
        return {fqn: self.module_cost(fqn).flops for fqn in self.by_module}

    @property
    def bytes_read(self) -> dict[str, int]:
        """Inclusive bytes read per module."""
        return {fqn: self.module_cost(fqn).bytes_read for fqn in self.by_module}

    @property
    def bytes_written(self) -> dict[str, int]:
        """Inclusive bytes written per module."""
        return {fqn: self.module_cost(fqn).bytes_written for fqn in self.by_module}

    @property
    def module_parameters(self) -> dict[str, int]:
        """Parameters of every module, its descendants' included (the root ``""`` holds them all)."""
        counts = dict.fromkeys(self.module_classes, 0)
        for name, numel in self.parameters.items():
            for prefix in _prefixes(name.rpartition(".")[0]):
                counts[prefix] += numel
        return counts


def _prefixes(fqn: str) -> list[str]:
    """``a.b.c`` → ``["", "a", "a.b", "a.b.c"]``: the module and all its ancestors."""
    if not fqn:
        return [""]
    parts = fqn.split(".")
    return ["", *(".".join(parts[: i + 1]) for i in range(len(parts)))]


def exclusive_costs(by_module: Mapping[str, Mapping[str, OpCost]]) -> dict[str, dict[str, OpCost]]:
    """Each module's own ops: its inclusive cost less that of its nearest measured descendants.

    Module calls nest like the module tree here (a module runs only inside its parent's forward), so the
    nearest measured descendants of a module ran disjoint sets of ops, all inside it; containers that
    never ran (``nn.ModuleList``) are simply skipped over.
    """
    names = set(by_module)
    children: dict[str, list[str]] = defaultdict(list)
    for fqn in names:
        if fqn:
            parent = next(p for p in reversed(_prefixes(fqn)[:-1]) if p in names)
            children[parent].append(fqn)
    own: dict[str, dict[str, OpCost]] = {}
    for fqn, ops in by_module.items():
        mine = dict(ops)
        for child in children[fqn]:
            for op, cost in by_module[child].items():
                mine[op] = mine.get(op, OpCost()) - cost
        own[fqn] = {op: cost for op, cost in mine.items() if cost != OpCost()}
    return own


def _tensors(tree: object) -> list[torch.Tensor]:
    return [leaf for leaf in tree_flatten(tree)[0] if isinstance(leaf, torch.Tensor)]


def stored_numel(tensor: torch.Tensor) -> int:
    """Elements a tensor's view addresses, a broadcast (stride-0) dimension counted once."""
    return math.prod(size for size, stride in zip(tensor.shape, tensor.stride(), strict=True) if stride)


def _nbytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(stored_numel(t) * t.element_size() for t in tensors)


def op_bytes(
    func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: object
) -> OpCost:
    """Bytes one aten op reads and writes, under the convention of the module docstring."""
    packet = func.overloadpacket
    if func.is_view or packet in _VIEWS_WITHOUT_ALIAS_SCHEMA or packet in _ALLOCATIONS:
        return OpCost()
    written = _nbytes(_tensors(out))
    if packet in _FACTORIES_FROM_METADATA:
        return OpCost(0, 0, written)
    if packet is aten.embedding:
        # a gather reads the indices and the rows it gathers, not the whole table
        return OpCost(0, _nbytes(_tensors(args[1])) + written, written)
    read_args = args[1:] if packet in _DESTINATION_NOT_READ else args
    read_kwargs = {key: value for key, value in kwargs.items() if key != "out"}
    read = _nbytes(_tensors((read_args, read_kwargs)))
    if packet in _CONTIGUOUS_INPUT_ON_CUDA and _strided(args[0]):
        # the CUDA kernel's contiguous copy of its input, then the kernel on the copy
        copied = _nbytes([args[0]])
        return OpCost(0, read + copied, written + copied)
    if packet is aten.constant_pad_nd:
        return pad_cost(args[0], args[1], written)
    return OpCost(0, read, written)


def pad_cost(tensor: torch.Tensor, pad: Sequence[int], written: int) -> OpCost:
    """``constant_pad_nd`` of ``tensor`` by ``pad`` into an output of ``written`` bytes: the input
    less its crops is read; with a positive pad, ``fill_`` of the whole output and then ``copy_`` of
    that interior into it, else a clone of the interior."""
    interior = pad_interior_numel(tensor, pad) * tensor.element_size()
    filled = any(p > 0 for p in pad)
    return OpCost(0, min(_nbytes([tensor]), interior), written + interior if filled else written)


def pad_interior_numel(tensor: torch.Tensor, pad: Sequence[int]) -> int:
    """Elements of the interior ``constant_pad_nd`` copies the input into: the input's shape with
    its negative pads (crops) taken off; ``pad`` is ``F.pad``'s (last dimension first, low then
    high)."""
    sizes = list(tensor.shape)
    for index in range(len(pad) // 2):
        dim = len(sizes) - 1 - index
        sizes[dim] += min(pad[2 * index], 0) + min(pad[2 * index + 1], 0)
    return math.prod(sizes)


def _strided(tensor: torch.Tensor) -> bool:
    """Neither contiguous nor channels-last: a CUDA kernel that needs one of the two copies it."""
    return not (tensor.is_contiguous() or tensor.is_contiguous(memory_format=torch.channels_last))


class ByteCounterMode(TorchDispatchMode):  # type: ignore[no-untyped-call, misc, unused-ignore]
    """Counts the bytes of every aten op, attributed to every module on the tracker's stack (inclusive).

    The tracker must be entered too (``with tracker, ByteCounterMode(tracker):``).
    """

    def __init__(self, tracker: ModuleTracker) -> None:
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        self.tracker = tracker
        self.counts: dict[str, dict[str, OpCost]] = defaultdict(dict)
        self.paused = False

    def record(self, name: str, cost: OpCost) -> None:
        """Add one op's cost to every module on the stack (for ops counted above the dispatcher)."""
        for parent in set(self.tracker.parents):
            ops = self.counts[parent]
            ops[name] = ops.get(name, OpCost()) + cost

    def __torch_dispatch__(
        self,
        func: torch._ops.OpOverload,
        types: object,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.paused:
            return out
        cost = op_bytes(func, args, kwargs, out)
        if cost != OpCost():
            self.record(str(func.overloadpacket), cost)
        return out


FUSED_RMS_NORM: Final = "aten._fused_rms_norm"
"""The op name :class:`FusedRMSNorm` records, as the CUDA build's dispatcher would see it."""


class FusedRMSNorm(TorchFunctionMode):  # type: ignore[misc, unused-ignore]
    """Counts ``F.rms_norm`` as the fused op a CUDA build runs (see the module docstring).

    Where the CUDA build also falls back to the composite (no weight of the input's dtype, a complex
    input), the composite's ops are counted as they run.
    """

    def __init__(self, counter: ByteCounterMode) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: object,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func is not torch.nn.functional.rms_norm:
            return func(*args, **kwargs)
        bound = dict(zip(("input", "normalized_shape", "weight", "eps"), args, strict=False)) | kwargs
        x, weight = bound["input"], bound.get("weight")
        if weight is None or weight.dtype != x.dtype or x.is_complex():
            return func(*args, **kwargs)
        self.counter.paused = True
        try:
            out = func(*args, **kwargs)
        finally:
            self.counter.paused = False
        rows = x.numel() // math.prod(weight.shape)
        # x:[rows, n], w:[n] → y:[rows, n], rstd:[rows] in fp32
        read = _nbytes([x, weight])
        self.counter.record(FUSED_RMS_NORM, OpCost(0, read, _nbytes([out]) + 4 * rows))
        return out


MASKED_SDPA: Final = "aten._scaled_dot_product_efficient_attention"
"""The op :class:`FusedSDPA` records for attention with an additive float mask, as a CUDA build runs it."""
MASK_ALIGNMENT: Final = 8
"""Elements the CUDA memory-efficient kernel wants the mask's rows aligned to (else it pads a copy)."""


def _padded_mask_numel(mask: torch.Tensor) -> int:
    """Elements of the aligned copy the CUDA build makes of ``mask`` (0 when it is aligned already)."""
    if all(stride % MASK_ALIGNMENT == 0 for stride in mask.stride()[:-1] if stride):
        return 0
    last = -(-mask.shape[-1] // MASK_ALIGNMENT) * MASK_ALIGNMENT
    return stored_numel(mask) // max(mask.shape[-1], 1) * last


class FusedSDPA(TorchFunctionMode):  # type: ignore[misc, unused-ignore]
    """Runs ``F.scaled_dot_product_attention`` as the one fused CPU op, which has a meta kernel.

    Without this the meta device runs the math decomposition. Grouped-query attention is not supported
    (Wan uses none). With an additive float mask (umT5's position bias) a CUDA build cannot run flash
    attention (``can_use_flash_attention`` in ``aten/src/ATen/native/transformers/cuda/sdp_utils.cpp``
    rejects any mask, ``check_for_attn_mask``) and runs the memory-efficient kernel, which takes the
    mask as its ``attn_bias``: that call is recorded as :data:`MASKED_SDPA` reading q, k, v and the
    mask (at the elements each stores) and writing the output only (no log-sum-exp without
    gradients), after a padded copy of the mask when its rows are not aligned to
    :data:`MASK_ALIGNMENT` elements (``preprocess_mask`` / ``pad_bias`` in
    ``aten/src/ATen/native/transformers/attention.cpp``). Masked attention needs ``counter``.
    """

    def __init__(self, counter: ByteCounterMode | None = None) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: object,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func is not torch.nn.functional.scaled_dot_product_attention:
            return func(*args, **kwargs)
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
        bound = dict(zip(names, args, strict=False)) | kwargs
        mask = bound.get("attn_mask")
        masked = mask is not None and mask.is_floating_point() and self.counter is not None
        if (mask is not None and not masked) or bound.get("enable_gqa", False):
            raise LlmPerfOptError(
                "fused_sdpa: supports attention without a mask or with an additive float mask, and no "
                f"grouped-query heads; got attn_mask={None if mask is None else mask.dtype}, "
                f"enable_gqa={bound.get('enable_gqa')}"
            )
        if masked:
            assert isinstance(mask, torch.Tensor)
            return self._masked(bound, mask)
        output, _logsumexp = CPU_FLASH_SDPA(
            bound["query"],
            bound["key"],
            bound["value"],
            bound.get("dropout_p", 0.0),
            bound.get("is_causal", False),
            scale=bound.get("scale"),
        )
        return output

    def _masked(self, bound: dict[str, Any], mask: torch.Tensor) -> torch.Tensor:
        counter = self.counter
        assert counter is not None
        query, key, value = bound["query"], bound["key"], bound["value"]
        padded = _padded_mask_numel(mask)
        if padded:
            # at::pad of the mask's last dimension to aligned rows, counted as every pad is
            pad = (0, -(-mask.shape[-1] // MASK_ALIGNMENT) * MASK_ALIGNMENT - mask.shape[-1])
            counter.record("aten.constant_pad_nd", pad_cost(mask, pad, padded * mask.element_size()))
        counter.paused = True
        try:
            output, _logsumexp = CPU_FLASH_SDPA(
                query,
                key,
                value,
                bound.get("dropout_p", 0.0),
                bound.get("is_causal", False),
                attn_mask=mask,
                scale=bound.get("scale"),
            )
        finally:
            counter.paused = False
        counter.record(MASKED_SDPA, OpCost(0, _nbytes([query, key, value, mask]), _nbytes([output])))
        return cast(torch.Tensor, output)


def _cpu_flash_sdpa_flop(
    query_shape: tuple[int, ...],
    key_shape: tuple[int, ...],
    value_shape: tuple[int, ...],
    *args: object,
    out_shape: object = None,
    **kwargs: object,
) -> int:
    """FLOPs of the fused CPU attention op: torch's SDPA formula (FlopCounterMode passes shapes)."""
    del args, out_shape, kwargs
    formula = cast(Callable[[tuple[int, ...], tuple[int, ...], tuple[int, ...]], int], sdpa_flop_count)
    return formula(query_shape, key_shape, value_shape)


def _qualified_name(cls: type) -> str:
    """``torch.nn.modules.linear.Linear`` → ``torch.nn.Linear`` where torch.nn exports it."""
    if cls.__module__.startswith("torch.nn.modules.") and getattr(torch.nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _relative(key: str, root_class: str) -> str:
    """ModuleTracker key (``WanTransformer3DModel.blocks.0``) → ``named_modules()`` name (``blocks.0``)."""
    if key == root_class:
        return ""
    if key.startswith(root_class + "."):
        return key[len(root_class) + 1 :]
    raise LlmPerfOptError(f"module: ops ran in {key!r}, outside the measured {root_class}")


def measure_forward(
    module: torch.nn.Module,
    inputs: Mapping[str, torch.Tensor],
    *,
    fused_sdpa: bool = True,
    fused_rms_norm: bool = True,
) -> Measurement:
    """Run ``module(**inputs)`` once without gradients and count its FLOPs and bytes per module and op.

    ``fused_sdpa`` and ``fused_rms_norm`` count attention and RMS norm as the fused ops a CUDA build
    dispatches (:class:`FusedSDPA`, :class:`FusedRMSNorm`); without them, as the meta device runs them.
    """
    root_class = type(module).__name__
    flop_counter = FlopCounterMode(display=False, custom_mapping={CPU_FLASH_SDPA: _cpu_flash_sdpa_flop})
    tracker = ModuleTracker()
    byte_counter = ByteCounterMode(tracker)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        for context in (torch.no_grad(), flop_counter, tracker, byte_counter):
            stack.enter_context(context)
        if fused_rms_norm:
            stack.enter_context(FusedRMSNorm(byte_counter))
        if fused_sdpa:
            stack.enter_context(FusedSDPA(byte_counter))
        module(**inputs)
    seconds = time.perf_counter() - start

    costs: dict[str, dict[str, OpCost]] = defaultdict(dict)
    for key, ops in byte_counter.counts.items():
        costs[key] = dict(ops)
    for key, flop_ops in flop_counter.get_flop_counts().items():
        for packet, flops in flop_ops.items():
            name = str(packet)
            costs[key][name] = costs[key].get(name, OpCost()) + OpCost(int(flops), 0, 0)
    totals = costs.pop(GLOBAL_KEY, {})
    return Measurement(
        root_class=root_class,
        inputs={name: (str(t.dtype).removeprefix("torch."), tuple(t.shape)) for name, t in inputs.items()},
        by_module={_relative(key, root_class): read_only(ops) for key, ops in costs.items()},
        totals=totals,
        parameters={name: p.numel() for name, p in module.named_parameters()},
        module_classes={name: _qualified_name(type(m)) for name, m in module.named_modules()},
        fused_sdpa=fused_sdpa,
        fused_rms_norm=fused_rms_norm,
        seconds=seconds,
    )
