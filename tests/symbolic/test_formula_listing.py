"""The formula listing shows every module once, and each repeated block once with index ``i``."""

from __future__ import annotations

from llm_perf_opt.symbolic.formula import shown_modules
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.implementation import OFFICIAL
from llm_perf_opt.wan2_1.variants import get_variant


def test_blocks_are_shown_once_with_index_i() -> None:
    """T2V-1.3B's 30 blocks appear as one ``blocks.i`` entry whose node is block 0."""
    tree = dit_tree(get_variant("t2v-1.3b"), OFFICIAL)
    listed = dict(shown_modules(tree))
    assert listed["diffusion.blocks.i"].id == "diffusion.blocks.0"
    assert listed["diffusion.blocks.i.self_attn"].id == "diffusion.blocks.0.self_attn"
    assert not any(".blocks.1" in label for label in listed)
    assert next(iter(listed)) == tree.root_id
    per_block = sum(1 for node in tree if node.id.startswith("diffusion.blocks.0."))
    shown_in_block = sum(1 for label in listed if label.startswith("diffusion.blocks.i."))
    assert shown_in_block == per_block
    assert len(listed) == len(tree.nodes) - 29 * (per_block + 1)
