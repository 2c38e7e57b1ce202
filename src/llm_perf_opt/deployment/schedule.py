"""What a run adds to each module's roofline, as data a model family fills: loads (bytes over a
channel) added to a module's time or hidden behind it, modules that run on the host CPU, the
per-rank share of sequence-parallel work, and the memory parts and phases of a run.

A module's time in a run is built bottom-up (:mod:`.engine`)::

    own   = max(roofline own, overlap_own) + Σ added loads
    total = max(own + Σ children, overlap_total)        (own is then total − Σ children)

so a parent's time is exactly its own plus its children's, with communication and copies put on
the module that causes them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Final, Literal, Protocol

import sympy
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.collectives import tokens_per_rank
from llm_perf_opt.hardware.roofline import maximum
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.module import ModuleNode, OpKind
from llm_perf_opt.symbolic.symbols import H

__all__ = [
    "CHANNELS",
    "NO_RULE",
    "CostAdjustment",
    "Load",
    "Overlapping",
    "Rule",
    "RunMemory",
    "Schedule",
    "ScheduleBuilder",
    "SequenceShard",
    "StageShard",
]

Channel = Literal["collective", "host"]
Overlapping = Literal["added", "overlap_own", "overlap_total"]
"""How a load meets a module's time (see :class:`Rule`)."""
CHANNELS: Final = ("collective", "host")
"""``collective``: the GPU-GPU link (or the host link without one); ``host``: host ↔ GPU copies."""


@frozen
class Load:
    """Bytes one module moves per run over a channel.

    Attributes:
        name: what it is (``diffusion.fsdp_all_gather``); loads of one name are summed in reports.
        nbytes: bytes per run (an expression in the workload symbols).
        channel: one of :data:`CHANNELS`.
    """

    name: str
    nbytes: sympy.Expr
    channel: Channel


@frozen
class Rule:
    """What a module's time gets on top of its roofline.

    Attributes:
        added: loads on the critical path, added to its own time.
        overlap_own: a load hidden behind its own ops (own = max(own, load)).
        overlap_total: a load hidden behind its whole subtree (total = max(total, load)).
    """

    added: tuple[Load, ...] = ()
    overlap_own: Load | None = None
    overlap_total: Load | None = None


NO_RULE: Final = Rule()


class CostAdjustment(Protocol):
    """A rewrite of each op kind's cost before its roofline (a rank's share of a sequence-parallel
    run). ``key`` groups nodes the rewrite treats alike."""

    def key(self, node: ModuleNode) -> Hashable:
        """Nodes with equal keys (and equal declarations) get the same rewrite."""
        ...

    def __call__(self, node: ModuleNode, kind: OpKind, cost: Cost) -> Cost:
        """The cost of ``kind`` in one call of ``node`` as the time model should see it."""
        ...


@frozen(eq=False)
class SequenceShard:
    """The per-rank cost of a sequence-parallel run over ``world`` ranks.

    Token-proportional costs are taken at ``⌈L / P⌉`` tokens by scaling the height symbol: every
    token count of the sharded modules is ``∝ H`` (checked for ``tokens`` on construction), and the
    weights, the text context and the other constants do not depend on ``H``. The fused attention of
    the ``sequence_attention`` modules attends ``L/P`` queries to all ``L`` keys: its FLOPs (and score
    work) are ``P ×`` the scaled ones. The own ops of ``replicated`` modules stay whole.

    Attributes:
        world: the ranks the sequence is split over.
        tokens: the sequence length expression being split.
        replicated: ids of the modules whose own ops every rank runs in full.
        sequence_attention: ids of the modules whose fused attention is the sequence-parallel one.
    """

    world: int
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
        object.__setattr__(self, "_scale", H * tokens_per_rank(self.tokens, self.world) / self.tokens)

    def key(self, node: ModuleNode) -> Hashable:
        if node.id in self.replicated:
            return "replicated"
        return "sequence_attention" if node.id in self.sequence_attention else "sharded"

    def __call__(self, node: ModuleNode, kind: OpKind, cost: Cost) -> Cost:
        if self.world == 1 or node.id in self.replicated:
            return cost
        scaled = Cost(**{name: sympy.sympify(expr).subs(H, self._scale) for name, expr in cost})
        if node.id in self.sequence_attention and kind[0].startswith("_scaled_dot_product_"):
            return Cost(
                flops=self.world * scaled.flops,
                vector_flops=self.world * scaled.vector_flops,
                bytes_read=scaled.bytes_read,
                bytes_written=scaled.bytes_written,
                weight_bytes=scaled.weight_bytes,
                params=scaled.params,
                activation_bytes=scaled.activation_bytes,
            )
        return scaled


@frozen(eq=False)
class StageShard:
    """A :class:`SequenceShard` applied to the modules of one stage; the others stay whole."""

    stage: str
    shard: SequenceShard

    def key(self, node: ModuleNode) -> Hashable:
        return (self.stage, self.shard.key(node)) if node.stage == self.stage else "whole"

    def __call__(self, node: ModuleNode, kind: OpKind, cost: Cost) -> Cost:
        return self.shard(node, kind, cost) if node.stage == self.stage else cost


@frozen(eq=False)
class Schedule:
    """A run's schedule for one tree and deployment (workload-free).

    Attributes:
        rules: module id → what its time gets on top of its roofline.
        on_host: ids of the modules whose own ops run on the host CPU.
        adjust: the per-rank cost rewrite, or ``None``.
    """

    rules: Mapping[str, Rule]
    on_host: frozenset[str]
    adjust: CostAdjustment | None

    @property
    def loads(self) -> dict[str, tuple[Channel, sympy.Expr]]:
        """name → (channel, bytes per run), every load summed over the modules it is put on."""
        found: dict[str, tuple[Channel, sympy.Expr]] = {}
        for rule in self.rules.values():
            for load in (*rule.added, rule.overlap_own, rule.overlap_total):
                if load is not None:
                    previous = found.get(load.name, (load.channel, sympy.Integer(0)))[1]
                    found[load.name] = (load.channel, previous + load.nbytes)
        return found


class ScheduleBuilder:
    """Collects a family's loads module by module; :meth:`build` freezes them into a :class:`Schedule`."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}
        self._on_host: set[str] = set()

    def add(
        self,
        node: ModuleNode,
        name: str,
        nbytes: sympy.Expr,
        channel: Channel,
        *,
        how: Overlapping = "added",
    ) -> None:
        """Put a load of ``nbytes`` on ``node``; a load of 0 bytes is not recorded."""
        if sympy.sympify(nbytes) == 0:
            return
        load = Load(name, sympy.sympify(nbytes), channel)
        rule = self._rules.get(node.id, NO_RULE)
        if how == "added":
            rule = Rule((*rule.added, load), rule.overlap_own, rule.overlap_total)
        elif how == "overlap_own":
            rule = Rule(rule.added, load, rule.overlap_total)
        else:
            rule = Rule(rule.added, rule.overlap_own, load)
        self._rules[node.id] = rule

    def run_on_host(self, module_ids: set[str] | frozenset[str]) -> None:
        """The own ops of these modules run on the host CPU."""
        self._on_host |= module_ids

    def build(self, adjust: CostAdjustment | None) -> Schedule:
        return Schedule(MappingProxyType(dict(self._rules)), frozenset(self._on_host), adjust)


@frozen(kw_only=True, eq=False)
class RunMemory:
    """Memory of one run on the most loaded device, in bytes.

    Attributes:
        parts: each resident or transient piece (weights of each model as held, gathered units,
            activation peaks), expressions in the workload symbols.
        phases: phase → bytes in use while it runs; the run's peak is the largest.
    """

    parts: Mapping[str, sympy.Expr]
    phases: Mapping[str, sympy.Expr]

    @property
    def peak(self) -> sympy.Expr:
        """The run's peak: the largest phase."""
        return maximum(*(p for p in self.phases.values() if p != 0))
