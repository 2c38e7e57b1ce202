"""The time of a whole Wan2.1 run as the official ``generate.py`` runs it, per stage and per module.

A run is the pipeline tree (``llm_perf_opt.wan2_1.pipeline.declare_pipeline``: umT5 twice, CLIP and
the VAE encode for image-conditioned tasks, ``2·S`` transformer forwards, ``S`` scheduler steps,
the VAE decode) timed on **rank 0**, the critical path: every rank runs umT5, CLIP, the VAE encode
and the sampling loop; rank 0 alone decodes while the others wait at a barrier. On top of each
module's roofline (:func:`~.roofline.time_model`) the run adds what the official code does
(``generate.py``, ``wan/distributed``; the release that published the README timings, February 2025):

- **Sequence parallelism** (``--ulysses_size``/``--ring_size``): each transformer module's cost is
  its rank's share (:class:`~.parallel.SequenceShard`); every self-attention adds its four
  all-to-alls and hides its ring K/V passes behind the attention (``max``); the head output is
  gathered after every forward.
- **FSDP** (``--dit_fsdp``, ``--t5_fsdp``): each block's bf16 parameters are all-gathered once per
  forward, hidden behind the block (``max(block, gather)``); the root unit's gather is exposed.
- **Offload** (``--offload_model``; :class:`~.run.RunConfig`): umT5 is built on the CPU and moved to
  the GPU for encoding (back after it with offload); the transformer of an image-conditioned task
  on one GPU starts on the CPU (``init_on_cpu``) and moves in before the loop; with offload the
  transformer goes back to the CPU after sampling and CLIP after its encode, and image-conditioned
  tasks move both noise predictions and the latent between GPU and CPU every step and run the
  guidance combination and the scheduler step on the CPU. Copies run over the host link at the
  ``host_link`` factor. One ``generate()`` call on a freshly built pipeline is timed; loading the
  checkpoints is not.
- **umT5 on the CPU** (``--t5_cpu``): its modules run on the :class:`~.host.HostCpu` (an assumed
  rate), and the two contexts are copied to the GPU.

Every module's seconds cover all its calls in one run, and a parent's time is exactly its own plus
its children's: communication and copies are put on the module that causes them (the all-to-alls
and exposed ring passes on each ``self_attn``, an exposed FSDP gather on its block, the head
gather, root-unit gather and the transformer's copies on ``diffusion``, umT5's copies on
``text_encoder``, the per-step copies on ``scheduler``). Times stay SymPy expressions in the
workload symbols and compile to numpy for grids of workloads.

The same schedule is also evaluated numerically, with the efficiency factors as inputs, for the
calibration fit (:func:`numeric_run`); a test checks both agree.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Hashable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
import sympy
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator, get_accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, Efficiency, EfficiencyTable
from llm_perf_opt.hardware.host import DEFAULT_HOST, HostCpu, host_own_seconds
from llm_perf_opt.hardware.memory import run_memory, weight_bytes
from llm_perf_opt.hardware.parallel import (
    Overlap,
    Parallelism,
    SequenceShard,
    dit_sequence_shard,
    fsdp_all_gather_bytes,
    link_for,
    ring_pass_bytes,
    sequence_all_gather_bytes,
    ulysses_all_to_all_bytes,
)
from llm_perf_opt.hardware.roofline import (
    DEFAULT_POLICY,
    RooflineTerm,
    compile_seconds,
    own_terms,
    terms_seconds,
    time_model,
)
from llm_perf_opt.hardware.run import RunConfig, run_config
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BF16, FP32
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree, OpKind
from llm_perf_opt.symbolic.symbols import WORKLOAD_SYMBOLS, B, L, S, Workload
from llm_perf_opt.wan2_1.geometry import (
    PADDED_TEXT_LEN,
    check_frame_size,
    latent_frames,
    latent_height,
    latent_width,
    video_tokens,
)
from llm_perf_opt.wan2_1.implementation import Implementation, get_implementation
from llm_perf_opt.wan2_1.pipeline import PIPELINE_ID, pipeline_tree
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

__all__ = [
    "STAGES",
    "ModuleTimes",
    "NumericRun",
    "PipelineTime",
    "module_times",
    "numeric_run",
    "pipeline_time",
    "pipeline_tree",
    "resolve_accelerator",
    "resolve_implementation",
    "resolve_variant",
    "tree_time",
]

FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")

STAGES: Final = ("text_encoder", "image_encoder", "vae_encode", "diffusion", "scheduler", "vae_decode")
"""The stages of a run, in the order they run; their seconds add up to the total.

``vae_encode`` is ``vae.encoder`` and ``vae.conv1``; ``vae_decode`` is ``vae.conv2``, ``vae.decoder``
and the VAE's own latent scaling; ``scheduler`` includes the guidance combination (the pipeline
root's own ops)."""

TEXT_ENCODER: Final = "text_encoder"
IMAGE_ENCODER: Final = "image_encoder"
DIFFUSION: Final = "diffusion"
SCHEDULER: Final = "scheduler"
VAE: Final = "vae"

COLLECTIVE: Final = "collective"
"""Channel of the collectives: the GPU-GPU link, or the host link without one (:func:`.link_for`)."""
HOST: Final = "host"
"""Channel of host ↔ GPU copies: the host link at the ``host_link`` factor."""

LATENT_COPIES_PER_STEP: Final = 4
"""With offload an image-conditioned task copies, per step, both noise predictions to the CPU and
the latent back to the GPU twice (the next model input and ``x0``): four latent-sized copies."""


def resolve_variant(variant: str | WanVariant) -> WanVariant:
    """A variant record from its name (or the record itself)."""
    return variant if isinstance(variant, WanVariant) else get_variant(variant)


def resolve_implementation(implementation: str | Implementation) -> Implementation:
    """An implementation profile from its name (or the profile itself)."""
    return get_implementation(implementation)


def resolve_accelerator(accelerator: str | Accelerator) -> Accelerator:
    """An accelerator from its name or alias (or the record itself)."""
    return accelerator if isinstance(accelerator, Accelerator) else get_accelerator(accelerator)


# ─── the schedule: what the official code adds to each module's roofline ───────────────────────


@frozen
class _Load:
    """Bytes one module moves per run over a channel (:data:`COLLECTIVE` or :data:`HOST`)."""

    name: str
    nbytes: sympy.Expr
    channel: str


@frozen
class _Rule:
    """What a module's time gets on top of its roofline.

    ``added``: loads on the critical path, added to its own time. ``overlap_own``: a load hidden
    behind its own ops (own = max(own, load)). ``overlap_total``: a load hidden behind its whole
    subtree (total = max(total, load)).
    """

    added: tuple[_Load, ...] = ()
    overlap_own: _Load | None = None
    overlap_total: _Load | None = None

    def with_added(self, load: _Load) -> _Rule:
        return _Rule((*self.added, load), self.overlap_own, self.overlap_total)


_NO_RULE: Final = _Rule()


@frozen(eq=False)
class _DiffusionShard:
    """The rank's share of the transformer's modules (sequence parallelism); other stages whole."""

    shard: SequenceShard

    def key(self, node: ModuleNode) -> Hashable:
        return ("diffusion", self.shard.key(node)) if node.stage == DIFFUSION else "whole"

    def __call__(self, node: ModuleNode, kind: OpKind, cost: Cost) -> Cost:
        return self.shard(node, kind, cost) if node.stage == DIFFUSION else cost


@frozen(eq=False)
class _Schedule:
    """The run's schedule on rank 0 for one tree and setup (workload-free).

    Attributes:
        tree: the pipeline tree.
        config: the setup.
        adjust: the per-rank cost adjustment.
        rules: module id → what its time gets on top of its roofline.
        on_host: ids of the modules whose own ops run on the host CPU.
        loads: name → (channel, bytes per run), every load of the run summed over its modules.
        keys: module id → a number equal for modules whose times are equal.
        order: each distinct number once, children first: (number, a module with it, its
            children's numbers).
    """

    tree: ModuleTree
    config: RunConfig
    adjust: _DiffusionShard
    rules: Mapping[str, _Rule]
    on_host: frozenset[str]
    loads: Mapping[str, tuple[str, sympy.Expr]]
    keys: Mapping[str, int]
    order: tuple[tuple[int, str, tuple[int, ...]], ...]


def _container(tree: ModuleTree, node_id: str) -> ModuleNode:
    """The repeated-block container directly under ``node_id``."""
    for child in tree[node_id].children:
        if tree[child].repetition == "for":
            return tree[child]
    raise LlmPerfOptError(f"tree: {node_id!r} has no repeated blocks")


def _unit_params(tree: ModuleTree, node_id: str) -> tuple[ModuleNode, int, int]:
    """The block container under ``node_id``, one block's parameters and the root unit's (the
    parameters outside the blocks): FSDP's units."""
    blocks = _container(tree, node_id)
    block = tree[blocks.children[0]]
    block_params = int(block.aggregate.params)
    root_params = int(tree[node_id].aggregate.params) - len(blocks.children) * block_params
    return blocks, block_params, root_params


def _subtree(tree: ModuleTree, node_id: str) -> set[str]:
    prefix = f"{node_id}."
    return {node.id for node in tree if node.id == node_id or node.id.startswith(prefix)}


def is_image_conditioned(tree: ModuleTree) -> bool:
    """Whether a pipeline tree runs the image encoder (I2V, FLF2V)."""
    return IMAGE_ENCODER in tree.nodes


def int_param(node: ModuleNode, name: str) -> int:
    """An integer constructor parameter of a module; raises naming the module if it is not one."""
    value = node.params.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LlmPerfOptError(f"tree: {node.id}.params.{name}: expected an integer, got {value!r}")
    return value


def _latent_bytes(tree: ModuleTree) -> sympy.Expr:
    z_dim = int_param(tree[VAE], "z_dim")
    return B * z_dim * latent_frames() * latent_height() * latent_width() * FP32.size_bytes


def _schedule(tree: ModuleTree, config: RunConfig) -> _Schedule:
    rules: dict[str, _Rule] = {}
    loads: dict[str, tuple[str, sympy.Expr]] = {}
    image = is_image_conditioned(tree)
    parallelism = config.parallelism
    world = parallelism.world_size

    def add(node: ModuleNode, name: str, nbytes: sympy.Expr, channel: str, *, how: str = "added") -> None:
        if nbytes == 0:
            return
        load = _Load(name, nbytes, channel)
        rule = rules.get(node.id, _NO_RULE)
        if how == "added":
            rule = rule.with_added(load)
        elif how == "overlap_own":
            rule = _Rule(rule.added, load, rule.overlap_total)
        else:
            rule = _Rule(rule.added, rule.overlap_own, load)
        rules[node.id] = rule
        previous = loads.get(name, (channel, sympy.Integer(0)))[1]
        loads[name] = (channel, previous + nbytes)

    # the transformer: sequence parallelism and FSDP, per forward × its calls
    dit = tree[DIFFUSION]
    dim = int_param(dit, "dim")
    patch = dit.params.get("patch_size")
    if not isinstance(patch, list | tuple) or not all(isinstance(p, int) for p in patch):
        raise LlmPerfOptError(f"tree: {dit.id}.params.patch_size: expected integers, got {patch!r}")
    head_out = int_param(dit, "out_dim") * math.prod(patch)
    tokens = video_tokens()
    blocks, block_params, root_params = _unit_params(tree, DIFFUSION)
    a2a = ulysses_all_to_all_bytes(tokens, dim, parallelism)
    ring = ring_pass_bytes(tokens, dim, parallelism)
    gather = fsdp_all_gather_bytes(block_params, parallelism)
    ring_how = "overlap_own" if config.overlap.ring_with_attention else "added"
    gather_how = "overlap_total" if config.overlap.fsdp_with_compute else "added"
    for block_id in blocks.children:
        block = tree[block_id]
        attention = next(tree[c] for c in block.children if tree[c].class_name == "WanSelfAttention")
        add(attention, "diffusion.ulysses_all_to_all", attention.calls * a2a, COLLECTIVE)
        add(attention, "diffusion.ring_kv", attention.calls * ring, COLLECTIVE, how=ring_how)
        add(block, "diffusion.fsdp_all_gather", block.calls * gather, COLLECTIVE, how=gather_how)
    add(
        dit,
        "diffusion.fsdp_root_gather",
        dit.calls * fsdp_all_gather_bytes(root_params, parallelism),
        COLLECTIVE,
    )
    if world > 1:
        add(
            dit,
            "diffusion.head_all_gather",
            dit.calls * sequence_all_gather_bytes(tokens, head_out, parallelism),
            COLLECTIVE,
        )

    # umT5: FSDP gathers, or the CPU, and its copies
    text = tree[TEXT_ENCODER]
    t5_bytes = weight_bytes(tree, TEXT_ENCODER)
    if config.t5_fsdp:
        t5_sharding = Parallelism(parallelism.ulysses, parallelism.ring, fsdp=True)
        t5_blocks, t5_block_params, t5_root_params = _unit_params(tree, TEXT_ENCODER)
        t5_gather = fsdp_all_gather_bytes(t5_block_params, t5_sharding)
        for block_id in t5_blocks.children:
            block = tree[block_id]
            add(block, "text_encoder.fsdp_all_gather", block.calls * t5_gather, COLLECTIVE, how=gather_how)
        add(
            text,
            "text_encoder.fsdp_root_gather",
            text.calls * fsdp_all_gather_bytes(t5_root_params, t5_sharding),
            COLLECTIVE,
        )
    t5_held = -(-t5_bytes // world) if config.t5_fsdp else t5_bytes
    if config.t5_cpu:
        context = text.calls * B * L * int_param(text, "dim") * BF16.size_bytes
        add(text, "text_encoder.context_to_gpu", context, HOST)
    else:
        if not config.t5_fsdp:
            add(text, "text_encoder.to_gpu", sympy.Integer(t5_bytes), HOST)
        if config.offload:
            add(text, "text_encoder.to_cpu", sympy.Integer(t5_held), HOST)

    # CLIP and the transformer's copies
    if image and config.offload:
        add(
            tree[IMAGE_ENCODER],
            "image_encoder.to_cpu",
            sympy.Integer(weight_bytes(tree, IMAGE_ENCODER)),
            HOST,
        )
    dit_bytes = weight_bytes(tree, DIFFUSION)
    dit_held = -(-dit_bytes // world) if parallelism.fsdp else dit_bytes
    if image and world == 1:
        add(dit, "diffusion.to_gpu", sympy.Integer(dit_held), HOST)
    if config.offload:
        add(dit, "diffusion.to_cpu", sympy.Integer(dit_held), HOST)
    if image and config.offload:
        latent = LATENT_COPIES_PER_STEP * S * _latent_bytes(tree)
        add(tree[SCHEDULER], "scheduler.latent_copies", latent, HOST)

    on_host: set[str] = set()
    if config.t5_cpu:
        on_host |= _subtree(tree, TEXT_ENCODER)
    if image and config.offload:
        on_host |= _subtree(tree, SCHEDULER) | {tree.root_id}

    shard = dit_sequence_shard(tree, parallelism, root_id=DIFFUSION)
    adjust = _DiffusionShard(shard)
    # a structural key per module, numbered: modules with equal numbers have equal times
    numbers: dict[Hashable, int] = {}
    keys: dict[str, int] = {}
    order: list[tuple[int, str, tuple[int, ...]]] = []
    for node in reversed(list(tree)):
        child_keys = tuple(keys[child] for child in node.children)
        structure = (
            id(node.own_breakdown),
            node.calls,
            adjust.key(node),
            node.id in on_host,
            rules.get(node.id, _NO_RULE),
            child_keys,
        )
        number = numbers.get(structure)
        if number is None:
            number = numbers[structure] = len(numbers)
            order.append((number, node.id, child_keys))
        keys[node.id] = number
    return _Schedule(
        tree=tree,
        config=config,
        adjust=adjust,
        rules=MappingProxyType(rules),
        on_host=frozenset(on_host),
        loads=MappingProxyType(loads),
        keys=MappingProxyType(keys),
        order=tuple(order),
    )


def _bandwidth(
    channel: str, accelerator: Accelerator, parallelism: Parallelism, efficiencies: EfficiencyTable
) -> float:
    if channel == COLLECTIVE:
        return link_for(accelerator, parallelism, efficiencies).bandwidth
    return accelerator.host_link_bandwidth * efficiencies.for_device(accelerator).factor("host_link")


def _assemble(
    schedule: _Schedule,
    own_value: Callable[[ModuleNode], T],
    load_value: Callable[[_Load], T],
    add: Callable[..., T],
    maximum: Callable[[T, T], T],
    subtract: Callable[[T, T], T],
) -> tuple[dict[int, T], dict[int, T]]:
    """(total, own) seconds per distinct module number under the schedule, bottom-up.

    ``own = max(roofline own, overlap_own) + Σ added``; ``total = own + Σ children``; then
    ``total = max(total, overlap_total)`` with ``own = total − Σ children``, so a parent's time is
    exactly its own plus its children's.
    """
    tree = schedule.tree
    totals: dict[int, T] = {}
    owns: dict[int, T] = {}
    for key, node_id, child_keys in schedule.order:
        node = tree[node_id]
        rule = schedule.rules.get(node_id, _NO_RULE)
        own = own_value(node)
        if rule.overlap_own is not None:
            own = maximum(own, load_value(rule.overlap_own))
        if rule.added:
            own = add(own, *(load_value(load) for load in rule.added))
        children = [totals[child] for child in child_keys]
        total = add(own, *children)
        if rule.overlap_total is not None:
            total = maximum(total, load_value(rule.overlap_total))
            own = subtract(total, add(*children))
        totals[key] = total
        owns[key] = own
    return totals, owns


def _stages(seconds: Mapping[str, T], own: Mapping[str, T], add: Callable[..., T], zero: T) -> dict[str, T]:
    return {
        "text_encoder": seconds[TEXT_ENCODER],
        "image_encoder": seconds.get(IMAGE_ENCODER, zero),
        "vae_encode": add(seconds["vae.encoder"], seconds["vae.conv1"]),
        "diffusion": seconds[DIFFUSION],
        "scheduler": add(seconds[SCHEDULER], own[PIPELINE_ID]),
        "vae_decode": add(seconds["vae.conv2"], seconds["vae.decoder"], own[VAE]),
    }


# ─── the symbolic run ──────────────────────────────────────────────────────────────────────────


@frozen(kw_only=True, eq=False)
class PipelineTime:
    """The time of one run on rank 0, per module and per stage, as expressions (seconds).

    Attributes:
        tree: the pipeline tree the ids refer to.
        accelerator: the device.
        config: the run's setup.
        efficiency: the factors used.
        host: the host CPU model.
        seconds: module id → seconds of all its calls in one run (own + children).
        own_seconds: module id → seconds of its own ops, communication and copies.
        stages: :data:`STAGES` → seconds; they add up to :attr:`total`.
        loads: each copy and collective of the run → seconds before any overlap (what the link
            carries; the stage times hold only what is not hidden).
    """

    tree: ModuleTree
    accelerator: Accelerator
    config: RunConfig
    efficiency: Efficiency
    host: HostCpu
    seconds: Mapping[str, sympy.Expr]
    own_seconds: Mapping[str, sympy.Expr]
    stages: Mapping[str, sympy.Expr]
    loads: Mapping[str, sympy.Expr]

    @property
    def total(self) -> sympy.Expr:
        """Seconds of the whole run."""
        return self.seconds[self.tree.root_id]

    def _summary(self) -> tuple[tuple[str, ...], Callable[..., list[Any]]]:
        names = ("total", *self.stages, *self.loads)
        expressions = (self.total, *self.stages.values(), *self.loads.values())
        return names, compile_seconds(tuple(sympy.sympify(e) for e in expressions))

    @property
    def source(self) -> str:
        """The generated numpy source of the total, the stages and the loads."""
        return inspect.getsource(self._summary()[1])

    def evaluate(self, workload: Workload) -> dict[str, FloatArray]:
        """``total``, every stage and every load in seconds, over workload arrays of any
        broadcastable shapes."""
        names, function = self._summary()
        return dict(zip(names, _run(function, workload), strict=True))

    def evaluate_point(self, workload: Workload) -> dict[str, float]:
        """As :meth:`evaluate` for one workload, as Python floats."""
        return {name: float(value) for name, value in self.evaluate(workload).items()}

    def module_seconds(self, workload: Workload) -> tuple[dict[str, float], dict[str, float]]:
        """(seconds, own seconds) of every module for one workload, as Python floats."""
        unique: dict[sympy.Expr, int] = {}
        ids = list(self.seconds)
        total_slots = [unique.setdefault(sympy.sympify(self.seconds[i]), len(unique)) for i in ids]
        own_slots = [unique.setdefault(sympy.sympify(self.own_seconds[i]), len(unique)) for i in ids]
        values = _run(compile_seconds(tuple(unique)), workload)
        return (
            {i: float(values[s]) for i, s in zip(ids, total_slots, strict=True)},
            {i: float(values[s]) for i, s in zip(ids, own_slots, strict=True)},
        )


def _run(function: Callable[..., list[Any]], workload: Workload) -> list[FloatArray]:
    inputs = [np.asarray(value, dtype=np.float64) for value in workload.values()]
    try:
        shape = np.broadcast_shapes(*(a.shape for a in inputs))
    except ValueError:
        raise LlmPerfOptError(
            f"workload: the value shapes {[a.shape for a in inputs]} do not broadcast together"
        ) from None
    with np.errstate(all="ignore"):
        return [np.broadcast_to(np.asarray(o, dtype=np.float64), shape) for o in function(*inputs)]


def _symbolic_add(*terms: sympy.Expr) -> sympy.Expr:
    return sympy.Add(*terms)


@functools.lru_cache(maxsize=32)
def _pipeline_time(
    tree: ModuleTree,
    accelerator: Accelerator,
    config: RunConfig,
    efficiencies: EfficiencyTable,
    host: HostCpu,
) -> PipelineTime:
    schedule = _schedule(tree, config)
    model = time_model(
        tree,
        accelerator,
        efficiencies,
        attention_kernel=config.attention_kernel,
        policy=DEFAULT_POLICY,
        adjust=schedule.adjust,
    )
    bandwidths = {
        channel: _bandwidth(channel, accelerator, config.parallelism, efficiencies)
        for channel in (COLLECTIVE, HOST)
    }

    def own_value(node: ModuleNode) -> sympy.Expr:
        if node.id in schedule.on_host:
            return host_own_seconds(node, host)
        return model.own_seconds[node.id]

    def load_value(load: _Load) -> sympy.Expr:
        return load.nbytes / sympy.Float(bandwidths[load.channel])

    total_of, own_of = _assemble(
        schedule, own_value, load_value, _symbolic_add, sympy.Max, lambda a, b: a - b
    )
    seconds = {node_id: total_of[key] for node_id, key in schedule.keys.items()}
    own = {node_id: own_of[key] for node_id, key in schedule.keys.items()}
    seconds = {node.id: seconds[node.id] for node in tree}
    own = {node.id: own[node.id] for node in tree}
    stages = _stages(seconds, own, _symbolic_add, sympy.Integer(0))
    loads = {
        name: nbytes / sympy.Float(bandwidths[channel]) for name, (channel, nbytes) in schedule.loads.items()
    }
    return PipelineTime(
        tree=tree,
        accelerator=accelerator,
        config=config,
        efficiency=model.efficiency,
        host=host,
        seconds=MappingProxyType(seconds),
        own_seconds=MappingProxyType(own),
        stages=MappingProxyType(stages),
        loads=MappingProxyType(loads),
    )


def pipeline_time(
    variant: str | WanVariant,
    implementation: str | Implementation = "official",
    accelerator: str | Accelerator = "h100-sxm",
    *,
    gpus: int = 1,
    parallelism: Parallelism | None = None,
    offload: bool | None = None,
    t5_cpu: bool = False,
    t5_fsdp: bool | None = None,
    attention_kernel: str = "fa2",
    efficiencies: EfficiencyTable = EFFICIENCIES,
    guidance: bool = True,
    overlap: Overlap | None = None,
    host: HostCpu = DEFAULT_HOST,
) -> PipelineTime:
    """The time of one ``generate.py`` run of ``variant`` on ``gpus`` devices, symbolic in the
    workload symbols (seconds, rank 0).

    Defaults follow ``generate.py`` and the README (see :func:`~.run.run_config`): one GPU with
    ``--offload_model``, several with ``--dit_fsdp --t5_fsdp`` and Ulysses over all of them (ring
    where the heads do not split). ``attention_kernel`` is the kernel the official attention runs:
    FlashAttention-3 when ``flash_attn_interface`` is importable (Hopper), else FlashAttention-2,
    the one its requirements install (``fa2``, the default; the README timings agree with it).
    """
    record = resolve_variant(variant)
    profile = resolve_implementation(implementation)
    device = resolve_accelerator(accelerator)
    config = run_config(
        record.num_heads,
        device,
        gpus=gpus,
        parallelism=parallelism,
        offload=offload,
        t5_cpu=t5_cpu,
        t5_fsdp=t5_fsdp,
        attention_kernel=attention_kernel,
        guidance=guidance,
        efficiencies=efficiencies,
        **({} if overlap is None else {"overlap": overlap}),
    )
    return _pipeline_time(pipeline_tree(record, profile, guidance), device, config, efficiencies, host)


def tree_time(
    tree: ModuleTree,
    accelerator: Accelerator,
    config: RunConfig,
    efficiencies: EfficiencyTable = EFFICIENCIES,
    host: HostCpu = DEFAULT_HOST,
) -> PipelineTime:
    """:class:`PipelineTime` of a given pipeline tree (the reports' own tree) under ``config``."""
    return _pipeline_time(tree, accelerator, config, efficiencies, host)


# ─── the same schedule, numerically, for fitting factors ───────────────────────────────────────


@frozen(eq=False)
class NumericRun:
    """One run at one workload as numbers before the efficiency factors.

    :meth:`seconds` re-weighs the precomputed roofline terms, host times and byte counts with a
    trial table, so fitting factors needs no recompilation; it equals :class:`PipelineTime`'s total
    for the same factors (a test checks it).

    Attributes:
        schedule: the run's schedule.
        accelerator: the device.
        terms: module id → its own roofline terms at the workload.
        host_seconds: module id → seconds of its own ops on the host CPU (host modules only).
        load_bytes: each load → its bytes at the workload.
    """

    schedule: _Schedule
    accelerator: Accelerator
    terms: Mapping[str, tuple[RooflineTerm, ...]]
    host_seconds: Mapping[str, float]
    load_bytes: Mapping[_Load, float]

    def seconds(self, efficiencies: EfficiencyTable = EFFICIENCIES) -> dict[str, float]:
        """``total`` and every stage, in seconds, under ``efficiencies``."""
        efficiency = efficiencies.for_device(self.accelerator)
        parallelism = self.schedule.config.parallelism
        bandwidths = {
            channel: _bandwidth(channel, self.accelerator, parallelism, efficiencies)
            for channel in (COLLECTIVE, HOST)
        }
        cache: dict[int, float] = {}

        def own_value(node: ModuleNode) -> float:
            if node.id in self.host_seconds:
                return self.host_seconds[node.id]
            terms = self.terms[node.id]
            found = cache.get(id(terms))
            if found is None:
                found = cache[id(terms)] = terms_seconds(terms, efficiency)
            return found

        def load_value(load: _Load) -> float:
            return self.load_bytes[load] / bandwidths[load.channel]

        total_of, own_of = _assemble(
            self.schedule, own_value, load_value, _numeric_add, max, lambda a, b: a - b
        )
        keys = self.schedule.keys
        seconds = _KeyView(keys, total_of)
        own = _KeyView(keys, own_of)
        stages = _stages(seconds, own, _numeric_add, 0.0)
        return {"total": seconds[self.schedule.tree.root_id], **stages}


class _KeyView(Mapping[str, float]):
    """Module id → value, through the module's key (no per-module dictionary is built)."""

    def __init__(self, keys: Mapping[str, int], values: Mapping[int, float]) -> None:
        self._keys = keys
        self._values = values

    def __getitem__(self, module_id: str) -> float:
        return self._values[self._keys[module_id]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _numeric_add(*terms: float) -> float:
    return float(sum(terms))


@functools.lru_cache(maxsize=64)
def numeric_run(
    variant: WanVariant,
    implementation: Implementation,
    accelerator: Accelerator,
    config: RunConfig,
    frames: int,
    height: int,
    width: int,
    steps: int,
    host: HostCpu = DEFAULT_HOST,
) -> NumericRun:
    """The :class:`NumericRun` of one run of one video (batch 1, 512 text tokens)."""
    tree = pipeline_tree(variant, implementation, config.guidance)
    schedule = _schedule(tree, config)
    workload = Workload(
        batch=1, frames=frames, height=height, width=width, steps=steps, text_len=PADDED_TEXT_LEN
    )
    values = {
        symbol: sympy.Integer(int(value))
        for symbol, value in zip(WORKLOAD_SYMBOLS, workload.values(), strict=True)
    }
    terms = own_terms(
        tree, accelerator, workload, attention_kernel=config.attention_kernel, adjust=schedule.adjust
    )
    host_seconds = {
        node_id: float(sympy.sympify(host_own_seconds(tree[node_id], host)).xreplace(values))
        for node_id in schedule.on_host
    }
    load_bytes = {
        load: float(sympy.sympify(load.nbytes).xreplace(values))
        for rule in set(schedule.rules.values())
        for load in (*rule.added, rule.overlap_own, rule.overlap_total)
        if load is not None
    }
    return NumericRun(
        schedule=schedule,
        accelerator=accelerator,
        terms=MappingProxyType(terms),
        host_seconds=MappingProxyType(host_seconds),
        load_bytes=MappingProxyType(load_bytes),
    )


# ─── for the reports: every module's time in one run, and the peak memory per device ──────────


@frozen(kw_only=True)
class ModuleTimes:
    """One run's time per module and its peak memory per device, as the reports need them.

    ``seconds[id] * 1000`` is a module's ``total_time_ms`` and ``seconds[id] / total_seconds`` its
    ``share_of_model_time``; a parent's seconds are exactly its own plus its children's.

    Attributes:
        accelerator: the device's name.
        config: the run's setup.
        seconds: module id → seconds of all its calls in one run on rank 0 (own + children).
        own_seconds: module id → seconds of its own ops, with the communication and copies put
            on it (see the module docstring).
        total_seconds: the run's seconds (the root's).
        stages: :data:`STAGES` → seconds.
        peak_memory_bytes: peak bytes per device (rank 0).
        memory: ``phase.<phase>`` and each part of :class:`~.memory.RunMemory` → bytes.
    """

    accelerator: str
    config: RunConfig
    seconds: Mapping[str, float]
    own_seconds: Mapping[str, float]
    total_seconds: float
    stages: Mapping[str, float]
    peak_memory_bytes: float
    memory: Mapping[str, float]


_REQUIRED_IDS: Final = (TEXT_ENCODER, VAE, DIFFUSION, SCHEDULER)


def _check_pipeline_tree(tree: ModuleTree, variant: WanVariant, implementation: Implementation) -> bool:
    """Raise unless ``tree`` is the pipeline tree of ``variant`` and ``implementation``; return its
    guidance flag."""
    missing = [i for i in _REQUIRED_IDS if i not in tree.nodes]
    if tree.root_id != PIPELINE_ID or missing:
        raise LlmPerfOptError(
            f"tree: expected a pipeline tree (root {PIPELINE_ID!r} with "
            f"{', '.join(_REQUIRED_IDS)}); got root {tree.root_id!r}"
            + (f" without {', '.join(missing)}" if missing else "")
        )
    task = tree.root.params.get("task")
    if task != variant.official_task:
        raise LlmPerfOptError(
            f"variant: the tree is of task {task!r}, got {variant.model_variant!r} "
            f"(task {variant.official_task!r})"
        )
    expected = pipeline_tree(variant, implementation, bool(tree.root.params.get("guidance", True)))
    if tree[DIFFUSION].aggregate.weight_bytes != expected[DIFFUSION].aggregate.weight_bytes:
        raise LlmPerfOptError(
            f"implementation: the tree's transformer weights do not match the {implementation.name!r} "
            "profile; pass the implementation the tree was built with"
        )
    return bool(tree.root.params.get("guidance", True))


def _check_workload(workload: Workload) -> None:
    for name, value, minimum in zip(
        ("batch", "frames", "height", "width", "steps", "text_len"),
        workload.values(),
        (1, 1, 1, 1, 1, 0),
        strict=True,
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise LlmPerfOptError(f"workload.{name}: must be an integer ≥ {minimum}, got {value!r}")
    check_frame_size(int(workload.height), int(workload.width))


def module_times(
    tree: ModuleTree,
    accelerator: str | Accelerator,
    workload: Workload,
    *,
    variant: str | WanVariant,
    implementation: str | Implementation,
    gpus: int = 1,
    parallelism: Parallelism | None = None,
    offload: bool | None = None,
    t5_cpu: bool = False,
    t5_fsdp: bool | None = None,
    attention_kernel: str = "fa2",
    efficiencies: EfficiencyTable = EFFICIENCIES,
    host: HostCpu = DEFAULT_HOST,
) -> ModuleTimes:
    """Seconds of every module of a pipeline tree in one run, the total, and the peak memory per
    device, for one workload (integers: batch, frames, height, width, steps, text_len).

    ``tree`` is the reports' pipeline tree (``pipeline_tree(variant, implementation, guidance)``);
    ``variant`` and ``implementation`` are the ones it was built with (checked). The setup options
    are those of :func:`pipeline_time`.
    """
    record = resolve_variant(variant)
    profile = resolve_implementation(implementation)
    device = resolve_accelerator(accelerator)
    guidance = _check_pipeline_tree(tree, record, profile)
    _check_workload(workload)
    config = run_config(
        record.num_heads,
        device,
        gpus=gpus,
        parallelism=parallelism,
        offload=offload,
        t5_cpu=t5_cpu,
        t5_fsdp=t5_fsdp,
        attention_kernel=attention_kernel,
        guidance=guidance,
        efficiencies=efficiencies,
    )
    timing = _pipeline_time(tree, device, config, efficiencies, host)
    seconds, own = timing.module_seconds(workload)
    stages = timing.evaluate_point(workload)
    memory = run_memory(record, profile, config).evaluate_point(workload)
    return ModuleTimes(
        accelerator=device.name,
        config=config,
        seconds=MappingProxyType(seconds),
        own_seconds=MappingProxyType(own),
        total_seconds=seconds[tree.root_id],
        stages=MappingProxyType({stage: stages[stage] for stage in STAGES}),
        peak_memory_bytes=memory["peak"],
        memory=MappingProxyType({name: value for name, value in memory.items() if name != "peak"}),
    )
