"""Benchmark of the symbolic engine: build + compile a DiT-sized tree, then evaluate 10⁶ workloads.

Run: ``python benchmarks/bench_engine.py``. The tree is synthetic (not a Wan2.1 declaration) but
has realistic expressions: a transformer of 40 repeated blocks of ~20 modules each, whose
attention is quadratic in the token count ``(⌊(F−1)/4⌋+1)·⌊H/16⌋·⌊W/16⌋``, called ``2·steps`` times,
beside a text encoder in ``text_len``. It reports:

- the cold build and compile time (first call in the process, nothing cached);
- the time to evaluate all metrics of every module over 10⁶ workload points, both as a broadcast
  grid (axes per symbol) and as 10⁶ independent points (six flat arrays);
- the time for the root's totals alone over 10⁶ flat points;
- numpy's own time to write as many fresh float64 arrays of 10⁶ values as the evaluator computes
  (the floor: np.empty + one multiply each, all kept alive) and the ratio to it. Outputs that do not
  vary (constants such as params, or a grid axis an expression does not use) are broadcast views
  and are not counted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import sympy

from llm_perf_opt.symbolic import B, F, H, L, Module, Repeated, S, W, Workload, build_tree, compile_tree
from llm_perf_opt.symbolic.dtypes import BF16, FP32
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.primitives import (
    add,
    conv3d,
    gelu_tanh,
    layer_norm,
    linear,
    mul,
    rms_norm,
    rope,
    scaled_dot_product_attention,
    with_parameters,
)

DIM = 5120
HEADS = 40
HEAD_DIM = DIM // HEADS
FFN_DIM = 13824
TEXT_DIM = 4096
STAGE = "diffusion"


def _attention(name: str, tokens: sympy.Expr, kv_tokens: sympy.Expr, *, self_attention: bool) -> Module:
    rows = B * tokens
    kv_rows = B * kv_tokens

    def proj(proj_name: str, proj_rows: sympy.Expr) -> Module:
        # x:[B·rows, D] @ Wᵀ:[D, D]
        op = linear(proj_rows, DIM, DIM, bias=True, act_dtype=BF16, weight_dtype=BF16)
        return Module(name=proj_name, class_name="Linear", stage=STAGE, ops=(op,))

    def norm(norm_name: str, norm_rows: sympy.Expr) -> Module:
        op = with_parameters(rms_norm(norm_rows, DIM, dtype=FP32), DIM, dtype=BF16)
        return Module(name=norm_name, class_name="RMSNorm", stage=STAGE, ops=(op,))

    ops = [scaled_dot_product_attention(B, HEADS, tokens, kv_tokens, HEAD_DIM, dtype=BF16)]
    if self_attention:
        ops += [rope(2 * rows * DIM, dtype=BF16, table_numel=tokens * HEAD_DIM, table_dtype=FP32)]
    return Module(
        name=name,
        class_name="WanAttention",
        stage=STAGE,
        params={"dim": DIM, "heads": HEADS},
        children=(
            proj("to_q", rows),
            proj("to_k", kv_rows),
            proj("to_v", kv_rows),
            proj("to_out", rows),
            norm("norm_q", rows),
            norm("norm_k", kv_rows),
        ),
        ops=tuple(ops),
    )


def _block(tokens: sympy.Expr) -> Module:
    rows = B * tokens

    def norm(name: str, affine: bool) -> Module:
        op = layer_norm(rows, DIM, dtype=FP32, affine=affine)
        if affine:
            op = with_parameters(op, 2 * DIM, dtype=FP32)
        return Module(name=name, class_name="FP32LayerNorm", stage=STAGE, ops=(op,))

    ffn = Module(
        name="ffn",
        class_name="FeedForward",
        stage=STAGE,
        children=(
            Module(
                name="proj_in",
                class_name="GELU",
                stage=STAGE,
                ops=(
                    linear(rows, DIM, FFN_DIM, bias=True, act_dtype=BF16, weight_dtype=BF16),
                    gelu_tanh(rows * FFN_DIM, dtype=BF16),
                ),
            ),
            Module(
                name="proj_out",
                class_name="Linear",
                stage=STAGE,
                ops=(linear(rows, FFN_DIM, DIM, bias=True, act_dtype=BF16, weight_dtype=BF16),),
            ),
        ),
    )
    modulation = with_parameters(add(6 * B * DIM, dtype=FP32, other_numel=6 * DIM), 6 * DIM, dtype=FP32)
    return Module(
        name="block",
        class_name="WanTransformerBlock",
        stage=STAGE,
        params={"dim": DIM, "ffn_dim": FFN_DIM, "num_heads": HEADS},
        children=(
            norm("norm1", affine=False),
            _attention("attn1", tokens, tokens, self_attention=True),
            norm("norm2", affine=True),
            _attention("attn2", tokens, L, self_attention=False),
            norm("norm3", affine=False),
            ffn,
        ),
        ops=(
            modulation,
            # x·(1+scale)+shift and the gated residual, three times over [B·tokens, D]
            mul(3 * rows * DIM, dtype=FP32, other_numel=3 * B * DIM),
            add(3 * rows * DIM, dtype=FP32, other_numel=3 * B * DIM),
            add(3 * rows * DIM, dtype=BF16, inplace=True),
        ),
    )


def synthetic_tree(num_blocks: int = 40) -> ModuleTree:
    """A DiT-sized pipeline: ``num_blocks`` blocks in a transformer called 2·steps times, a text encoder."""
    latent_frames = sympy.floor((F - 1) / 4) + 1
    tokens = latent_frames * sympy.floor(H / 16) * sympy.floor(W / 16)
    patch = conv3d(
        B,
        16,
        DIM,
        kernel=(1, 2, 2),
        out_spatial=(latent_frames, sympy.floor(H / 16), sympy.floor(W / 16)),
        in_spatial=(latent_frames, 2 * sympy.floor(H / 16), 2 * sympy.floor(W / 16)),
        act_dtype=BF16,
        weight_dtype=BF16,
    )
    transformer = Module(
        name="transformer",
        class_name="WanTransformer3DModel",
        stage=STAGE,
        calls=2 * S,
        children=(
            Module(name="patch_embedding", class_name="Conv3d", stage=STAGE, ops=(patch,)),
            Module(
                name="text_embedder",
                class_name="Linear",
                stage=STAGE,
                ops=(linear(B * L, TEXT_DIM, DIM, bias=True, act_dtype=BF16, weight_dtype=BF16),),
            ),
            Repeated(template=_block(tokens), count=num_blocks),
            Module(
                name="proj_out",
                class_name="Linear",
                stage=STAGE,
                ops=(linear(B * tokens, DIM, 64, bias=True, act_dtype=BF16, weight_dtype=BF16),),
            ),
        ),
    )
    encoder_block = Module(
        name="block",
        class_name="UMT5Block",
        stage="text_encoder",
        ops=(
            linear(B * L, TEXT_DIM, 3 * TEXT_DIM, bias=False, act_dtype=BF16, weight_dtype=BF16),
            scaled_dot_product_attention(B, 64, L, L, 64, dtype=BF16),
            linear(B * L, TEXT_DIM, 10240, bias=False, act_dtype=BF16, weight_dtype=BF16),
        ),
    )
    encoder = Module(
        name="text_encoder",
        class_name="UMT5EncoderModel",
        stage="text_encoder",
        children=(Repeated(template=encoder_block, count=24, name="block"),),
    )
    root = Module(name="pipeline", class_name="WanPipeline", stage="other", children=(encoder, transformer))
    return build_tree(root, "pipeline")


def _best_of(repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _floor(n_arrays: int, n_points: int, repeats: int) -> float:
    """numpy writing ``n_arrays`` fresh float64 arrays of ``n_points``, all kept (np.empty + multiply)."""
    source = np.ones(n_points)

    def write() -> list[np.ndarray]:
        outputs = []
        for _ in range(n_arrays):
            out = np.empty(n_points)
            np.multiply(source, 2.0, out=out)
            outputs.append(out)
        return outputs

    return _best_of(repeats, write)


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    tree = synthetic_tree(args.blocks)
    built = time.perf_counter()
    evaluator = compile_tree(tree)
    compiled = time.perf_counter()
    print(f"tree: {len(tree)} modules, {len(evaluator.expressions)} unique expressions")
    print(
        f"cold build: {built - start:.3f} s, compile: {compiled - built:.3f} s, "
        f"total {compiled - start:.3f} s"
    )

    rng = np.random.default_rng(0)
    n = args.points
    flat = Workload(
        batch=rng.integers(1, 9, n),
        frames=rng.integers(1, 200, n),
        height=rng.integers(16, 1440, n),
        width=rng.integers(16, 2560, n),
        steps=rng.integers(1, 100, n),
        text_len=rng.integers(0, 1024, n),
    )
    # 4 · 50 · 10 · 10 · 5 · 10 = 10⁶ points as broadcast axes
    grid = Workload(
        batch=np.arange(1, 5).reshape(4, 1, 1, 1, 1, 1),
        frames=np.arange(1, 200, 4).reshape(1, 50, 1, 1, 1, 1),
        height=np.linspace(240, 1440, 10).astype(int).reshape(1, 1, 10, 1, 1, 1),
        width=np.linspace(320, 2560, 10).astype(int).reshape(1, 1, 1, 10, 1, 1),
        steps=np.array([10, 20, 30, 40, 50]).reshape(1, 1, 1, 1, 5, 1),
        text_len=np.linspace(0, 1024, 10).astype(int).reshape(1, 1, 1, 1, 1, 10),
    )

    flat_result = evaluator.evaluate(flat)
    varying = sum(1 for v in flat_result.values if 0 not in v.strides)
    grid_time = _best_of(args.repeats, lambda: evaluator.evaluate(grid))
    flat_time = _best_of(args.repeats, lambda: evaluator.evaluate(flat))
    floor_time = _floor(varying, n, args.repeats)
    print(
        f"{n} points, all {len(tree)} modules × 7 metrics: {len(evaluator.expressions)} unique arrays, "
        f"{varying} of them computed, the others constant (broadcast views)"
    )
    print(f"  flat points:    {flat_time * 1e3:8.1f} ms")
    grid_varying = sum(1 for v in evaluator.evaluate(grid).values if 0 not in v.strides)
    print(
        f"  broadcast grid: {grid_time * 1e3:8.1f} ms "
        f"({grid_varying} arrays vary with every axis, the others are views of smaller ones)"
    )
    print(f"  numpy floor, {varying} fresh float64 arrays (np.empty + multiply): {floor_time * 1e3:8.1f} ms")
    grid_floor = _floor(grid_varying, n, args.repeats)
    print(f"  numpy floor, {grid_varying} fresh float64 arrays: {grid_floor * 1e3:8.1f} ms")
    print(f"  ratio to the floor: flat {flat_time / floor_time:.2f}×, grid {grid_time / grid_floor:.2f}×")

    totals = compile_tree(tree, (tree.root_id,))
    totals_time = _best_of(args.repeats, lambda: totals.evaluate(flat))
    totals_varying = sum(1 for v in totals.evaluate(flat).values if 0 not in v.strides)
    totals_floor = _floor(totals_varying, n, args.repeats)
    print(
        f"root totals only (7 metrics), flat points: {totals_time * 1e3:.1f} ms; "
        f"floor {totals_floor * 1e3:.1f} ms ({totals_time / totals_floor:.2f}×)"
    )


if __name__ == "__main__":
    main()
