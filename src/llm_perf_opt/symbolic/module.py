"""Module declarations as data, and the tree of stable dotted ids built from them.

A :class:`Module` lists its children and the primitive calls it performs; a :class:`Repeated`
block is declared once with a count. :func:`build_tree` expands repetitions into per-index ids and
derives every node's cost from its own calls and its children's: nothing is typed twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Literal, TypeAlias

import sympy
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.cost import Cost, sum_costs
from llm_perf_opt.symbolic.primitives import OpCall

__all__ = ["Breakdown", "Module", "ModuleNode", "ModuleTree", "OpKind", "Repeated", "build_tree"]

OpKind: TypeAlias = tuple[str, str]
"""(primitive registry key, compute dtype name): the unit a module's cost is broken down by."""
Breakdown: TypeAlias = Mapping[OpKind, Cost]
"""A module's cost split by :data:`OpKind`, in order of first appearance."""

# The class name of the container node of a Repeated block, as torch names it.
CONTAINER_CLASS_NAME = "ModuleList"

_ONE = sympy.Integer(1)


def _check_stage(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise LlmPerfOptError(f"stage: expected a non-empty stage name, got {value!r}")


def _check_name(_instance: object, attribute: object, value: str) -> None:
    if not value:
        field_name = getattr(attribute, "name", "name")
        raise LlmPerfOptError(f"{field_name}: expected a non-empty module name, got {value!r}")


def _check_count(_instance: object, _attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LlmPerfOptError(f"count: expected an integer ≥ 1 of repeated blocks, got {value!r}")


def _frozen_params(params: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(params))


def _children(items: Iterable[Module | Repeated]) -> tuple[Module | Repeated, ...]:
    return tuple(items)


def _ops(items: Iterable[OpCall]) -> tuple[OpCall, ...]:
    return tuple(items)


def _as_expr(value: object) -> sympy.Expr:
    return value if isinstance(value, sympy.Expr) else sympy.sympify(value)


@frozen(kw_only=True, eq=False)
class Module:
    """A module of the real implementation, declared as data.

    Attributes:
        name: the attribute name under its parent (the last part of its id).
        class_name: the class of the real implementation (e.g. ``"Linear"``).
        stage: the pipeline stage; the model family names its stages.
        params: the constructor parameters of the real class, JSON-able.
        children: submodules, in declaration order.
        ops: the primitive calls the module performs itself, one per real op.
        calls: how many times it is called per call of its parent (an expression).
    """

    name: str = field(validator=_check_name)
    class_name: str
    stage: str = field(validator=_check_stage)
    params: Mapping[str, object] = field(factory=dict, converter=_frozen_params)
    children: tuple[Module | Repeated, ...] = field(default=(), converter=_children)
    ops: tuple[OpCall, ...] = field(default=(), converter=_ops)
    calls: sympy.Expr = field(default=_ONE, converter=_as_expr)


@frozen(kw_only=True, eq=False)
class Repeated:
    """``count`` identical copies of ``template`` in a container, ids ``name.0`` … ``name.{count-1}``.

    The container is a node of its own (``repetition="for"``), whose cost is the sum of its blocks.

    Attributes:
        template: the block, declared once.
        count: the number of blocks, ≥ 1.
        name: the container's attribute name.
    """

    template: Module
    count: int = field(validator=_check_count)
    name: str = field(default="blocks", validator=_check_name)


@frozen(kw_only=True, eq=False)
class ModuleNode:
    """One module of a built tree, with its derived costs.

    Attributes:
        id: the stable dotted id (``prefix.blocks.3.attn1``).
        name: the last part of the id.
        class_name: the class of the real implementation.
        stage: the pipeline stage.
        parent_id: the parent's id, ``None`` for the root.
        children: the children's ids, in declaration order.
        repetition: ``"for"`` for the container of a repeated block, else ``"none"``.
        repetition_count: the number of blocks of a container, else ``None``.
        params: the constructor parameters.
        own: the cost of the module's own calls (Σ of its ops), per call of the module.
        total: own + Σ child totals scaled by the child's calls, per call of the module.
        calls: calls of this module per call of the root (the product of ``calls`` down the path).
        aggregate: ``total`` over all its calls in one call of the root (``total.scaled(calls)``), the
            way FlopCounterMode adds repeated calls under one key; what the evaluator evaluates.
        breakdown: ``aggregate`` split by the kind of op (primitive and dtype) in the whole subtree;
            its costs add up to ``aggregate``.
        own_breakdown: ``own`` split by the kind of op, per call of the module (empty for a container).
        own_op_counts: how many ops of each kind the module performs itself, per call of it.
        ops: the primitive calls the module performs itself, in order, per call of it (the
            declaration's ops: what memory peaks and fusion rules read op by op).
    """

    id: str
    name: str
    class_name: str
    stage: str
    parent_id: str | None
    children: tuple[str, ...]
    repetition: Literal["none", "for"]
    repetition_count: int | None
    params: Mapping[str, object]
    own: Cost
    total: Cost
    calls: sympy.Expr
    aggregate: Cost
    breakdown: Breakdown
    own_breakdown: Breakdown
    own_op_counts: Mapping[OpKind, int]
    ops: tuple[OpCall, ...] = ()


@frozen(eq=False)
class ModuleTree:
    """The nodes of a built tree, keyed by id in pre-order (a parent before its children).

    Attributes:
        root_id: the id of the root node.
        nodes: every node by id, in pre-order.
    """

    root_id: str
    nodes: Mapping[str, ModuleNode]

    def __getitem__(self, module_id: str) -> ModuleNode:
        """The node ``module_id``; raises naming the id when there is none."""
        try:
            return self.nodes[module_id]
        except KeyError:
            raise LlmPerfOptError(
                f"module_id: no module {module_id!r} in the tree rooted at {self.root_id!r}"
            ) from None

    def __iter__(self) -> Iterator[ModuleNode]:
        """The nodes in pre-order."""
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def root(self) -> ModuleNode:
        """The root node."""
        return self.nodes[self.root_id]


class _Builder:
    """Expands one declaration; derived costs are memoised so repeated blocks share Cost objects."""

    def __init__(self) -> None:
        self.nodes: dict[str, ModuleNode] = {}
        # id(declaration) → (declaration, own, total); the declaration is kept alive with its id.
        self._derived: dict[int, tuple[Module | Repeated, Cost, Cost]] = {}
        # (id(total), calls) → aggregate
        self._aggregates: dict[tuple[int, sympy.Expr], Cost] = {}
        # id(declaration) → its total split by op kind, per call of it
        self._breakdowns: dict[int, dict[OpKind, Cost]] = {}
        # id(declaration) → its own ops grouped by op kind
        self._own_breakdowns: dict[int, Breakdown] = {}
        # (id(declaration), calls) → aggregate breakdown
        self._aggregate_breakdowns: dict[tuple[int, sympy.Expr], Breakdown] = {}

    def derive(self, item: Module | Repeated, node_id: str) -> tuple[Cost, Cost]:
        """(own, total) of a declaration, per call of it."""
        memo = self._derived.get(id(item))
        if memo is not None:
            return memo[1], memo[2]
        if isinstance(item, Repeated):
            own = Cost()
            _, block_total = self.derive(item.template, f"{node_id}.0")
            total = block_total.scaled(item.template.calls).replicated(item.count)
        else:
            if not item.children and not item.ops:
                raise LlmPerfOptError(
                    f"{node_id}: module {item.class_name!r} declares no ops and no children; "
                    f"expected at least one primitive call or child"
                )
            own = sum_costs(op.cost for op in item.ops)
            child_totals = []
            for child in item.children:
                _, child_total = self.derive(child, f"{node_id}.{child.name}")
                calls = child.calls if isinstance(child, Module) else _ONE
                child_totals.append(child_total.scaled(calls))
            total = sum_costs([own, *child_totals])
        self._derived[id(item)] = (item, own, total)
        return own, total

    def breakdown(self, item: Module | Repeated) -> dict[OpKind, Cost]:
        """The total of a declaration split by op kind, per call of it (after :meth:`derive`)."""
        found = self._breakdowns.get(id(item))
        if found is not None:
            return found
        parts: dict[OpKind, list[Cost]] = {}
        if isinstance(item, Repeated):
            block = item.template
            for kind, cost in self.breakdown(block).items():
                parts.setdefault(kind, []).append(cost.scaled(block.calls).replicated(item.count))
        else:
            for op in item.ops:
                parts.setdefault((op.primitive, op.dtype), []).append(op.cost)
            for child in item.children:
                calls = child.calls if isinstance(child, Module) else _ONE
                for kind, cost in self.breakdown(child).items():
                    parts.setdefault(kind, []).append(cost.scaled(calls))
        found = self._breakdowns[id(item)] = {kind: sum_costs(costs) for kind, costs in parts.items()}
        return found

    def own_breakdown(self, item: Module | Repeated) -> Breakdown:
        """A declaration's own ops grouped by op kind, per call of it."""
        found = self._own_breakdowns.get(id(item))
        if found is None:
            parts: dict[OpKind, list[Cost]] = {}
            for op in item.ops if isinstance(item, Module) else ():
                parts.setdefault((op.primitive, op.dtype), []).append(op.cost)
            grouped = {kind: sum_costs(costs) for kind, costs in parts.items()}
            found = self._own_breakdowns[id(item)] = MappingProxyType(grouped)
        return found

    def aggregate_breakdown(self, item: Module | Repeated, calls: sympy.Expr) -> Breakdown:
        key = (id(item), calls)
        found = self._aggregate_breakdowns.get(key)
        if found is None:
            scaled = {kind: cost.scaled(calls) for kind, cost in self.breakdown(item).items()}
            found = self._aggregate_breakdowns[key] = MappingProxyType(scaled)
        return found

    def aggregate(self, total: Cost, calls: sympy.Expr) -> Cost:
        key = (id(total), calls)
        found = self._aggregates.get(key)
        if found is None:
            found = self._aggregates[key] = total.scaled(calls)
        return found

    def add(
        self,
        item: Module | Repeated,
        node_id: str,
        name: str,
        parent_id: str | None,
        calls: sympy.Expr,
        child_base: str | None = None,
    ) -> None:
        """Add ``item`` and its subtree; children's ids are ``child_base.name`` (default ``node_id``)."""
        base = node_id if child_base is None else child_base
        if node_id in self.nodes:
            raise LlmPerfOptError(f"{node_id}: module id declared twice; expected unique child names")
        own, total = self.derive(item, node_id)
        if isinstance(item, Repeated):
            template = item.template
            child_ids = tuple(f"{node_id}.{i}" for i in range(item.count))
            self.nodes[node_id] = ModuleNode(
                id=node_id,
                name=name,
                class_name=CONTAINER_CLASS_NAME,
                stage=template.stage,
                parent_id=parent_id,
                children=child_ids,
                repetition="for",
                repetition_count=item.count,
                params=MappingProxyType({}),
                own=own,
                total=total,
                calls=calls,
                aggregate=self.aggregate(total, calls),
                breakdown=self.aggregate_breakdown(item, calls),
                own_breakdown=self.own_breakdown(item),
                own_op_counts=MappingProxyType({}),
            )
            block_calls = calls * template.calls
            for i, child_id in enumerate(child_ids):
                self.add(template, child_id, str(i), node_id, block_calls)
            return
        self.nodes[node_id] = ModuleNode(
            id=node_id,
            name=name,
            class_name=item.class_name,
            stage=item.stage,
            parent_id=parent_id,
            children=tuple(_join(base, child.name) for child in item.children),
            repetition="none",
            repetition_count=None,
            params=item.params,
            own=own,
            total=total,
            calls=calls,
            aggregate=self.aggregate(total, calls),
            breakdown=self.aggregate_breakdown(item, calls),
            own_breakdown=self.own_breakdown(item),
            own_op_counts=MappingProxyType(Counter((op.primitive, op.dtype) for op in item.ops)),
            ops=item.ops,
        )
        for child in item.children:
            child_calls = calls * child.calls if isinstance(child, Module) else calls
            self.add(child, _join(base, child.name), child.name, node_id, child_calls)


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def build_tree(root: Module, prefix: str, *, bare_children: bool = False) -> ModuleTree:
    """Expand ``root`` into a :class:`ModuleTree` whose root id is ``prefix``.

    Children get ids ``prefix.name``, blocks of a :class:`Repeated` ``prefix.name.i``. With
    ``bare_children`` the root's children are ids of their own (``name``, ``name.child``…): a
    pipeline root grouping components that each carry their stage prefix. A node's ``calls`` counts
    calls per call of the root (the root's own ``calls`` is ignored: 1). Every expanded block shares
    the template's Cost objects. Raises for a leaf that declares no ops and for a duplicate id.
    """
    if not prefix:
        raise LlmPerfOptError(f"prefix: expected a non-empty root id, got {prefix!r}")
    builder = _Builder()
    builder.add(root, prefix, root.name, None, _ONE, child_base="" if bare_children else None)
    return ModuleTree(prefix, MappingProxyType(builder.nodes))
