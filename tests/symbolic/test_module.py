"""Module declarations and the built tree: ids, repetition, derived costs, declaration errors."""

from __future__ import annotations

import pytest
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic import METRICS, Module, Repeated, S, build_tree, sum_costs
from llm_perf_opt.symbolic.dtypes import BF16
from llm_perf_opt.symbolic.primitives import mm

from .toy import BLOCKS, toy_tree

OP = mm(2, 3, 4, dtype=BF16)


def _leaf(name: str) -> Module:
    return Module(name=name, class_name="Leaf", stage="other", ops=(OP,))


def test_ids_are_dotted_and_blocks_expanded() -> None:
    """Ids are prefix.name…, a Repeated block expands to name.0 … name.N-1 under a 'for' container."""
    tree = toy_tree()
    assert tree.root_id == "toy"
    assert tree.root.parent_id is None
    blocks = tree["toy.denoiser.blocks"]
    assert (blocks.repetition, blocks.repetition_count, blocks.class_name) == ("for", BLOCKS, "ModuleList")
    assert blocks.children == tuple(f"toy.denoiser.blocks.{i}" for i in range(BLOCKS))
    block = tree["toy.denoiser.blocks.2"]
    assert (block.name, block.parent_id, block.repetition, block.repetition_count) == (
        "2",
        "toy.denoiser.blocks",
        "none",
        None,
    )
    assert block.children == (
        "toy.denoiser.blocks.2.norm",
        "toy.denoiser.blocks.2.attn",
        "toy.denoiser.blocks.2.mlp",
    )
    assert tree["toy.denoiser.blocks.1.attn"].params == {"dim": 64, "heads": 4}


def test_nodes_are_in_pre_order() -> None:
    """Every node comes after its parent, and children come in declaration order."""
    tree = toy_tree()
    position = {node.id: i for i, node in enumerate(tree)}
    for node in tree:
        if node.parent_id is not None:
            assert position[node.parent_id] < position[node.id]
        assert [position[c] for c in node.children] == sorted(position[c] for c in node.children)


def test_repeated_blocks_share_cost_objects() -> None:
    """The expanded blocks share the template's Cost objects (one derivation for N blocks)."""
    tree = toy_tree()
    first, other = tree["toy.denoiser.blocks.0.attn"], tree["toy.denoiser.blocks.2.attn"]
    assert first.own is other.own
    assert first.total is other.total
    assert first.aggregate is other.aggregate


def test_calls_multiply_down_the_path() -> None:
    """A node's calls are the product of the declared calls from the root (mlp: 2 per block, 2·steps)."""
    tree = toy_tree()
    assert tree.root.calls == 1
    assert tree["toy.denoiser.blocks.0.mlp"].calls == 4 * S
    assert tree["toy.decoder.frame_conv"].calls == sympy.Symbol("frames", integer=True, positive=True)


def test_parent_total_is_own_plus_children() -> None:
    """Every node's total is its own ops plus its children's totals times their calls, symbolically."""
    tree = toy_tree()
    for node in tree:
        children = [tree[c] for c in node.children]
        parts = [node.own] + [c.total.scaled(c.calls / node.calls) for c in children]
        expected = sum_costs(parts)
        for metric in METRICS:
            difference = getattr(node.total, metric) - getattr(expected, metric)
            assert sympy.expand(difference) == 0, (node.id, metric)


def test_container_cost_is_the_sum_of_its_blocks() -> None:
    """A container's total is N times its block's, weights and params included."""
    tree = toy_tree()
    container, block = tree["toy.denoiser.blocks"], tree["toy.denoiser.blocks.0"]
    assert container.total == block.total.replicated(BLOCKS)


def test_leaf_without_ops_is_an_error_naming_its_id() -> None:
    """A leaf that declares no ops fails the build with its id, also inside a repeated block."""
    empty = Module(name="empty", class_name="Identity", stage="other")
    root = Module(name="root", class_name="Root", stage="other", children=(_leaf("a"), empty))
    with pytest.raises(LlmPerfOptError, match=r"^m\.empty: module 'Identity' declares no ops"):
        build_tree(root, "m")
    block = Module(name="block", class_name="Block", stage="other", children=(empty,))
    root = Module(
        name="root", class_name="Root", stage="other", children=(Repeated(template=block, count=2),)
    )
    with pytest.raises(LlmPerfOptError, match=r"^m\.blocks\.0\.empty: "):
        build_tree(root, "m")


def test_duplicate_ids_are_an_error() -> None:
    """Two children with the same name are rejected with the id they share."""
    root = Module(name="root", class_name="Root", stage="other", children=(_leaf("a"), _leaf("a")))
    with pytest.raises(LlmPerfOptError, match=r"m\.a: module id declared twice"):
        build_tree(root, "m")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Module(name="x", class_name="X", stage="", ops=(OP,)),
            r"stage: expected a non-empty stage name, got ''",
        ),
        (lambda: Module(name="", class_name="X", stage="vae", ops=(OP,)), r"name: expected a non-empty"),
        (lambda: Repeated(template=_leaf("a"), count=0), r"count: expected an integer ≥ 1 .* got 0"),
        (lambda: build_tree(_leaf("a"), ""), r"prefix: expected a non-empty root id"),
        (lambda: toy_tree()["toy.nothing"], r"module_id: no module 'toy.nothing'"),
    ],
)
def test_declaration_errors(build: object, message: str) -> None:
    """Bad declarations raise LlmPerfOptError naming the field and the bad value."""
    with pytest.raises(LlmPerfOptError, match=message):
        build()  # type: ignore[operator]


def test_breakdown_adds_up_to_the_aggregate() -> None:
    """Every node's cost split by (primitive, dtype) sums back to its aggregate, metric by metric."""
    tree = toy_tree()
    for node in tree:
        assert node.breakdown, node.id
        summed = sum_costs(node.breakdown.values())
        for metric in METRICS:
            difference = sympy.expand(getattr(summed, metric) - getattr(node.aggregate, metric))
            assert difference == 0, (node.id, metric)


def test_breakdown_keys_name_the_primitive_and_its_dtype() -> None:
    """An attention module's breakdown holds its fused attention at bf16 and its Linears' addmm/mm."""
    tree = toy_tree()
    attention = next(node for node in tree if node.class_name == "Attention")
    kinds = set(attention.breakdown)
    assert ("_scaled_dot_product_flash_attention", "bf16") in kinds
    assert ("addmm", "bf16") in kinds
    assert ("mm", "bf16") in kinds
    # the fused attention's FLOPs are the attention module's own FLOPs
    core = attention.breakdown["_scaled_dot_product_flash_attention", "bf16"]
    assert sympy.expand(core.flops - attention.own.flops * attention.calls) == 0


def test_own_breakdown_adds_up_to_own() -> None:
    """A node's own ops grouped by kind sum to its own cost; a container has none."""
    tree = toy_tree()
    for node in tree:
        summed = sum_costs(node.own_breakdown.values()) if node.own_breakdown else None
        if node.repetition == "for":
            assert not node.own_breakdown
        elif summed is not None:
            for metric in METRICS:
                assert sympy.expand(getattr(summed, metric) - getattr(node.own, metric)) == 0


def test_bare_children_are_ids_of_their_own() -> None:
    """A pipeline root with bare children names them without its own prefix, deeper ids follow."""
    leaf = Module(name="proj", class_name="Linear", stage="diffusion", ops=(mm(4, 4, 4, dtype=BF16),))
    component = Module(
        name="diffusion", class_name="WanModel", stage="diffusion", children=(leaf,), calls=2 * S
    )
    root = Module(name="pipeline", class_name="WanT2V", stage="other", children=(component,))
    tree = build_tree(root, "pipeline", bare_children=True)
    assert list(tree.nodes) == ["pipeline", "diffusion", "diffusion.proj"]
    assert tree["pipeline"].children == ("diffusion",)
    assert tree["diffusion.proj"].parent_id == "diffusion"
    assert tree["diffusion.proj"].calls == 2 * S
