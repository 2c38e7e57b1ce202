"""The one time-and-memory engine: every module's and stage's seconds and the memory per device of a
deployment, as SymPy expressions in the workload symbols *and* the efficiency factors, compiled
once per (tree, deployment shape) into one numpy function of (workload, factors).

A module's seconds cover all its calls in one run (rank 0, the critical path)::

    own   = calls · Σ over its op kinds of the roofline (or the host CPU's rates) + what the
            schedule adds (:mod:`.schedule`)
    total = own + Σ children

Everything a caller needs — per module, per stage, each communication load before overlap, memory
parts, phases and the peak — is one output of the same compiled function; fitting the factors
(:mod:`llm_perf_opt.calibration`) is repeated calls of it with other factor values, nothing is recompiled.
The generated source is cached on disk (:mod:`llm_perf_opt.symbolic.cache`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Hashable, Mapping
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import sympy
from attrs import frozen

from llm_perf_opt.deployment.schedule import NO_FUSION, NO_RULE, Load, RunMemory, Schedule
from llm_perf_opt.deployment.value import Deployment
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.collectives import link_for
from llm_perf_opt.hardware.efficiency import FACTOR_KEYS, FACTOR_SYMBOLS, FRAMEWORK, factor_symbol
from llm_perf_opt.hardware.host import host_own_seconds
from llm_perf_opt.hardware.roofline import (
    DEFAULT_POLICY,
    Maximum,
    OpClass,
    RooflineRule,
    host_transfer_seconds,
    kind_seconds,
    maximum,
    op_class,
    quantised_matmul_seconds,
    roofline_rule,
)
from llm_perf_opt.symbolic.cache import FUNCTION_NAME, load_generated
from llm_perf_opt.symbolic.compiler import GridPrinter, floor_divisions
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BF16
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree, OpKind
from llm_perf_opt.symbolic.symbols import INPUT_SYMBOLS, Workload
from llm_perf_opt.symbolic.whatif import check_whatifs

__all__ = ["FACTOR_ARGUMENTS", "RunExpressions", "RunModel", "run_expressions", "run_model"]

FloatArray = npt.NDArray[np.float64]

FACTOR_ARGUMENTS: Final = FACTOR_KEYS
"""The factor keys the compiled function takes after the six workload arrays, in this order."""


@frozen(kw_only=True, eq=False)
class RunExpressions:
    """The expressions of one run (seconds, bytes), in the workload symbols and the factor symbols.

    Attributes:
        seconds: module id → seconds of all its calls in one run (own + children).
        own_seconds: module id → seconds of its own ops, with the communication and copies put on it.
        stages: the family's stages → seconds; they add up to :attr:`total`.
        loads: each copy and collective → seconds before any overlap (what the link carries).
        memory: the run's memory parts and phases (bytes).
    """

    tree: ModuleTree
    seconds: Mapping[str, sympy.Expr]
    own_seconds: Mapping[str, sympy.Expr]
    stages: Mapping[str, sympy.Expr]
    loads: Mapping[str, sympy.Expr]
    memory: RunMemory

    @property
    def total(self) -> sympy.Expr:
        """Seconds of the whole run."""
        return self.seconds[self.tree.root_id]

    def outputs(self) -> dict[str, sympy.Expr]:
        """Every output by name: ``total``, ``stage.*``, ``load.*``, ``module.*``, ``own.*``,
        ``memory.*``, ``phase.*`` and ``peak_memory``."""
        return {
            "total": self.total,
            **{f"stage.{name}": expr for name, expr in self.stages.items()},
            **{f"load.{name}": expr for name, expr in self.loads.items()},
            **{f"module.{name}": expr for name, expr in self.seconds.items()},
            **{f"own.{name}": expr for name, expr in self.own_seconds.items()},
            **{f"memory.{name}": sympy.sympify(expr) for name, expr in self.memory.parts.items()},
            **{f"phase.{name}": sympy.sympify(expr) for name, expr in self.memory.phases.items()},
            "peak_memory": self.memory.peak,
        }


def _structure_keys(tree: ModuleTree, schedule: Schedule) -> dict[str, Hashable]:
    """A key per node, equal for nodes whose times are equal (the N blocks of a repeated block)."""
    adjust = schedule.adjust
    keys: dict[str, Hashable] = {}
    for node in reversed(list(tree)):
        keys[node.id] = (
            id(node.own_breakdown),
            node.calls,
            None if adjust is None else adjust.key(node),
            node.id in schedule.on_host,
            schedule.rules.get(node.id, NO_RULE),
            schedule.fused.get(node.id, NO_FUSION),
            node.stage in schedule.stack_stages,
            tuple(keys[child] for child in node.children),
        )
    return keys


_FUSED_KIND: Final = ("fused_elementwise", "bf16")
"""The op kind a fused kernel is shown to the cost rewrite as (it is element-wise)."""
_FUSED_RULE: Final = RooflineRule("vector_flops", "fp32", "vector", "memory_elementwise")


def _breakdown(node: ModuleNode, removed: frozenset[int]) -> Mapping[OpKind, Cost]:
    """The node's own ops by kind, without those run inside fused kernels."""
    if not removed:
        return node.own_breakdown
    kinds: dict[OpKind, Cost] = {}
    for index, op in enumerate(node.ops):
        if index not in removed:
            kind = (op.primitive, op.dtype)
            kinds[kind] = kinds[kind] + op.cost if kind in kinds else op.cost
    return kinds


def _own_roofline(node: ModuleNode, deployment: Deployment, schedule: Schedule) -> sympy.Expr:
    """The node's own GPU seconds: each op kind's roofline (its fused chains as one element-wise
    kernel each); in the stack's stages, bf16 matrix products at the deployment's GEMM precision
    and weight storage, and everything over the stack's ``framework`` efficiency."""
    if node.id in schedule.on_host:
        return host_own_seconds(node, deployment.host)

    def seen(kind: OpKind, cost: Cost) -> Cost:
        return cost if schedule.adjust is None else schedule.adjust(node, kind, cost)

    fused = schedule.fused.get(node.id, NO_FUSION)
    stacked = node.stage in schedule.stack_stages
    gemm, storage = (deployment.gemm_precision, deployment.weight_storage) if stacked else ("bf16", "bf16")
    parts = []
    for kind, cost in _breakdown(node, fused.removed).items():
        rule = roofline_rule(kind, deployment.attention_kernel, DEFAULT_POLICY, deployment.precision, gemm)
        quantised = (gemm, storage) != ("bf16", "bf16") and kind[1] == "bf16"
        if quantised and op_class(kind[0]) is OpClass.MATMUL:
            weights = sympy.sympify(cost.params) * BF16.size_bytes
            activations = Cost(
                flops=cost.flops, bytes_read=cost.bytes_read - weights, bytes_written=cost.bytes_written
            )
            parts.append(
                quantised_matmul_seconds(
                    seen(kind, activations),
                    seen(kind, Cost(bytes_read=weights)).bytes_read,
                    rule,
                    deployment.accelerator,
                    gemm,
                    storage,
                )
            )
        else:
            parts.append(kind_seconds(seen(kind, cost), rule, deployment.accelerator))
    for kernel in fused.kernels:
        parts.append(kind_seconds(seen(_FUSED_KIND, kernel), _FUSED_RULE, deployment.accelerator))
    seconds = node.calls * sympy.Add(*parts)
    return seconds / factor_symbol(FRAMEWORK) if stacked else seconds


def run_expressions(tree: ModuleTree, deployment: Deployment) -> RunExpressions:
    """The symbolic time and memory of one run of ``tree`` under ``deployment``."""
    schedule = deployment.family.schedule(tree, deployment)
    link = link_for(deployment.accelerator, deployment.gpus)

    def load_seconds(load: Load) -> sympy.Expr:
        if load.channel == "collective":
            return link.seconds(load.nbytes)
        return host_transfer_seconds(load.nbytes, deployment.accelerator)

    keys = _structure_keys(tree, schedule)
    total_of: dict[Hashable, sympy.Expr] = {}
    own_of: dict[Hashable, sympy.Expr] = {}
    seconds: dict[str, sympy.Expr] = {}
    own_seconds: dict[str, sympy.Expr] = {}
    for node in reversed(list(tree)):
        key = keys[node.id]
        if key not in total_of:
            rule = schedule.rules.get(node.id, NO_RULE)
            own = _own_roofline(node, deployment, schedule)
            if rule.overlap_own is not None:
                own = maximum(own, load_seconds(rule.overlap_own))
            own = sympy.Add(own, *(load_seconds(load) for load in rule.added))
            children = [seconds[child] for child in node.children]
            total = sympy.Add(own, *children)
            if rule.overlap_total is not None:
                total = maximum(total, load_seconds(rule.overlap_total))
                own = total - sympy.Add(*children)
            total_of[key], own_of[key] = total, own
        seconds[node.id] = total_of[key]
        own_seconds[node.id] = own_of[key]
    ordered = [node.id for node in tree]
    seconds = {i: seconds[i] for i in ordered}
    own_seconds = {i: own_seconds[i] for i in ordered}
    loads = {
        name: (
            link.seconds(nbytes)
            if channel == "collective"
            else host_transfer_seconds(nbytes, deployment.accelerator)
        )
        for name, (channel, nbytes) in schedule.loads.items()
    }
    return RunExpressions(
        tree=tree,
        seconds=MappingProxyType(seconds),
        own_seconds=MappingProxyType(own_seconds),
        stages=MappingProxyType(deployment.family.stage_seconds(seconds, own_seconds)),
        loads=MappingProxyType(loads),
        memory=deployment.family.memory(tree, deployment),
    )


class _TimePrinter(GridPrinter):
    """The grid printer of the cost compiler (exact floor divisions, ``Min`` as ``numpy.minimum``),
    with a :class:`Maximum` as nested ``numpy.maximum`` calls."""

    def _print_Maximum(self, expr: sympy.Expr) -> str:
        name = self._module_format("numpy.maximum")
        printed = [self._print(arg) for arg in expr.args]
        nested: str = functools.reduce(lambda left, right: f"{name}({left}, {right})", printed)
        return nested


_NAMESPACE: Final[dict[str, Any]] = {"numpy": np}
_ARGUMENTS: Final = (*INPUT_SYMBOLS, *(FACTOR_SYMBOLS[key] for key in FACTOR_ARGUMENTS))


def _plain(expr: sympy.Expr, memo: dict[sympy.Expr, sympy.Expr]) -> sympy.Expr:
    """``expr`` with every SymPy ``Max`` as a :class:`Maximum`, bottom-up."""
    found = memo.get(expr)
    if found is not None:
        return found
    if expr.is_Atom:
        result = expr
    else:
        args = [_plain(arg, memo) for arg in expr.args]
        if isinstance(expr, sympy.Max):
            result = Maximum(*args)
        elif all(new is old for new, old in zip(args, expr.args, strict=True)):
            result = expr
        else:
            result = expr.func(*args)
    memo[expr] = result
    return result


def _compile(expressions: tuple[sympy.Expr, ...]) -> Callable[..., list[Any]]:
    memo: dict[sympy.Expr, sympy.Expr] = {}
    return sympy.lambdify(  # type: ignore[no-any-return]
        _ARGUMENTS,
        [floor_divisions(_plain(sympy.sympify(expr), memo)) for expr in expressions],
        modules="numpy",
        printer=_TimePrinter,
        cse=True,
    )


def _tree_fingerprint(tree: ModuleTree) -> str:
    """A hash of what a tree's time and memory are derived from: ids, classes, parameters, calls and
    every op's cost, op by op (blocks share their op tuples and are hashed once)."""
    digest = hashlib.sha256()
    seen: dict[int, str] = {}
    for node in tree:
        ops = seen.get(id(node.ops))
        if ops is None:
            ops = seen[id(node.ops)] = hashlib.sha256(
                repr(
                    [(op.primitive, op.dtype, tuple(str(e) for _, e in op.cost)) for op in node.ops]
                ).encode()
            ).hexdigest()
        digest.update(
            f"{node.id}|{node.class_name}|{node.stage}|{node.calls}|{dict(node.params)}|{ops}\n".encode()
        )
    return digest.hexdigest()


@frozen(eq=False, slots=False)
class RunModel:
    """One run's compiled time and memory: a numpy function of (workload, factors).

    Attributes:
        deployment: the deployment it was compiled for (its factor values are the defaults).
        tree: the module tree the ids refer to.
        names: output names (see :meth:`RunExpressions.outputs`), in output order.
        function: ``function(B, F, H, W, S, L, ρ, k, τ, *factors)`` → one array per unique output.
        slots: output name → index into the function's results.
    """

    deployment: Deployment
    tree: ModuleTree
    names: tuple[str, ...]
    function: Callable[..., list[Any]]
    slots: Mapping[str, int]
    _select: Callable[[tuple[str, ...]], _Compiled] | None = None

    @functools.cached_property
    def expressions(self) -> RunExpressions:
        """The expressions behind the compiled function (built on demand: a disk-cache hit skips them)."""
        return run_expressions(self.tree, self.deployment)

    @property
    def source(self) -> str:
        """The generated numpy source."""
        return inspect.getsource(self.function)

    def factor_values(self, factors: Mapping[str, Any] | None = None) -> list[Any]:
        """The factor arguments: the deployment's factors, with ``factors`` replacing some (numbers
        or arrays, e.g. one trial value per column for a fit)."""
        values = dict(self.deployment.factors)
        if factors:
            values.update(factors)
        return [values.get(key, 1.0) for key in FACTOR_ARGUMENTS]

    def evaluate(
        self,
        workload: Workload,
        factors: Mapping[str, Any] | None = None,
        *,
        names: tuple[str, ...] | None = None,
    ) -> dict[str, FloatArray]:
        """Outputs over workload arrays of any broadcastable shapes (and factor arrays), as float64.

        The workload's what-ifs (ρ, k, τ; default off: dense, no reuse, guidance on every step) are
        inputs like its sizes; out of range, they raise naming the field.

        ``names`` selects outputs (default: all); a few outputs are computed by a function compiled
        for them alone (once, cached like the whole), not by the whole.
        """
        check_whatifs(workload)
        inputs = [np.asarray(value, dtype=np.float64) for value in workload.inputs()]
        factor_inputs = [np.asarray(v, dtype=np.float64) for v in self.factor_values(factors)]
        try:
            shape = np.broadcast_shapes(*(a.shape for a in (*inputs, *factor_inputs)))
        except ValueError:
            raise LlmPerfOptError(
                f"workload: the value shapes {[a.shape for a in inputs]} do not broadcast together"
            ) from None
        wanted = self.names if names is None else names
        unknown = [name for name in wanted if name not in self.slots]
        if unknown:
            raise LlmPerfOptError(f"output: no output {unknown[0]!r}; outputs: total, stage.*, module.*, …")
        function, slots = self.function, self.slots
        if names is not None and self._select is not None and 3 * len(names) < len(self.names):
            selected = self._select(tuple(names))
            function, slots = selected.function, selected.slots
        arguments = [*inputs, *factor_inputs]
        size = int(np.prod(shape))
        if size <= CHUNK_POINTS:
            with np.errstate(all="ignore"):
                outputs = function(*arguments)
            return {
                name: np.broadcast_to(np.asarray(outputs[slots[name]], dtype=np.float64), shape)
                for name in wanted
            }
        return _evaluate_in_chunks(function, arguments, shape, {name: slots[name] for name in wanted})

    def evaluate_point(
        self, workload: Workload, factors: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """Every output for one workload, as Python floats."""
        return {name: float(value) for name, value in self.evaluate(workload, factors).items()}


CHUNK_POINTS: Final = 2**14
"""Grids larger than this are evaluated this many points at a time: every intermediate array of the
generated code then stays in the processor's cache, which is several times faster than whole-array
evaluation (and needs far less memory)."""


def _evaluate_in_chunks(
    function: Callable[..., list[Any]],
    arguments: list[FloatArray],
    shape: tuple[int, ...],
    slots: Mapping[str, int],
) -> dict[str, FloatArray]:
    """The outputs at ``slots`` over the broadcast ``shape``, computed chunk by chunk of the
    flattened points (outputs sharing a slot share one array)."""
    size = int(np.prod(shape))
    flat = [a if a.ndim == 0 else np.broadcast_to(a, shape).reshape(-1) for a in arguments]
    results = {slot: np.empty(size) for slot in set(slots.values())}
    with np.errstate(all="ignore"):
        for start in range(0, size, CHUNK_POINTS):
            stop = min(start + CHUNK_POINTS, size)
            outputs = function(*(a if a.ndim == 0 else a[start:stop] for a in flat))
            for slot, values in results.items():
                values[start:stop] = outputs[slot]
    return {name: results[slot].reshape(shape) for name, slot in slots.items()}


@frozen(eq=False)
class _Compiled:
    names: tuple[str, ...]
    slots: Mapping[str, int]
    function: Callable[..., list[Any]]
    built: dict[str, RunExpressions]


_COMPILED: dict[tuple[ModuleTree, tuple[object, ...], tuple[str, ...] | None], _Compiled] = {}
"""Compiled runs of this process, by (tree, deployment shape, selected outputs)."""
_EXPRESSIONS: dict[tuple[ModuleTree, tuple[object, ...]], RunExpressions] = {}
"""The expressions built in this process, by (tree, deployment shape)."""


def _compiled(
    tree: ModuleTree,
    shape: tuple[object, ...],
    deployment: Deployment,
    tree_key: str | None,
    names: tuple[str, ...] | None = None,
) -> _Compiled:
    """Compiled once per (tree, deployment shape, outputs); ``deployment`` is any with that shape.

    ``names`` selects outputs (``None``: all): a grid of the total alone computes only what the total
    needs, not every module's and memory figure."""
    found = _COMPILED.get((tree, shape, names))
    if found is not None:
        return found

    def expressions() -> RunExpressions:
        run = _EXPRESSIONS.get((tree, shape))
        if run is None:
            run = _EXPRESSIONS[tree, shape] = run_expressions(tree, deployment)
        return run

    def source() -> str:
        outputs = expressions().outputs()
        if names is not None:
            missing = [name for name in names if name not in outputs]
            if missing:
                raise LlmPerfOptError(
                    f"output: no output {missing[0]!r}; outputs: total, stage.*, module.*, …"
                )
            outputs = {name: outputs[name] for name in names}
        unique: dict[sympy.Expr, int] = {}
        slots = {name: unique.setdefault(sympy.sympify(e), len(unique)) for name, e in outputs.items()}
        code = inspect.getsource(_compile(tuple(unique)))
        return f"{code}\nOUTPUT_SLOTS = {slots!r}\n"

    material = f"run\n{tree_key if tree_key is not None else _tree_fingerprint(tree)}\n{shape!r}\n{names!r}"
    scope = load_generated(material, source, _NAMESPACE)
    slots = scope["OUTPUT_SLOTS"]
    built = {"run": _EXPRESSIONS[tree, shape]} if (tree, shape) in _EXPRESSIONS else {}
    found = _COMPILED[tree, shape, names] = _Compiled(
        tuple(slots), MappingProxyType(slots), scope[FUNCTION_NAME], built
    )
    return found


def run_model(deployment: Deployment, tree: ModuleTree | None = None) -> RunModel:
    """The compiled :class:`RunModel` of ``deployment`` (of ``tree``, default the family's pipeline
    tree of the deployment), compiled once per (tree, deployment shape) in a process and cached on
    disk; the deployment's factor values are only the defaults of its inputs."""
    own_tree = deployment.family.pipeline_tree(deployment)
    tree_key = None
    if tree is None or tree is own_tree:
        tree, tree_key = own_tree, deployment.family.tree_key(deployment)
    shape = deployment.shape
    compiled = _compiled(tree, shape, deployment, tree_key)
    selected = tree

    def select(names: tuple[str, ...]) -> _Compiled:
        return _compiled(selected, shape, deployment, tree_key, names)

    model = RunModel(deployment, tree, compiled.names, compiled.function, compiled.slots, select)
    if "run" in compiled.built:
        model.__dict__["expressions"] = compiled.built["run"]
    return model
