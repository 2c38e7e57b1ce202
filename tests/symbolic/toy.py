"""A small module tree that exercises every feature of the engine, shared by the tests."""

from __future__ import annotations

import functools

import sympy

from llm_perf_opt.symbolic import B, F, H, L, Module, Repeated, S, W, build_tree
from llm_perf_opt.symbolic.dtypes import BF16, FP32
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.primitives import (
    add,
    conv2d,
    conv3d,
    embedding,
    gelu_tanh,
    layer_norm,
    linear,
    rope,
    scaled_dot_product_attention,
    to_copy,
    with_parameters,
)

DIM = 64
HEADS = 4
HEAD_DIM = DIM // HEADS
BLOCKS = 3

# latent frames: ⌊(F − 1)/4⌋ + 1; tokens: latent frames · ⌊H/16⌋ · ⌊W/16⌋
LATENT_FRAMES = sympy.floor((F - 1) / 4) + 1
TOKENS = LATENT_FRAMES * sympy.floor(H / 16) * sympy.floor(W / 16)
ROWS = B * TOKENS


def _block() -> Module:
    attention = Module(
        name="attn",
        class_name="Attention",
        stage="diffusion",
        params={"dim": DIM, "heads": HEADS},
        children=(
            Module(
                name="to_qkv",
                class_name="Linear",
                stage="diffusion",
                ops=(linear(ROWS, DIM, 3 * DIM, bias=True, act_dtype=BF16, weight_dtype=BF16),),
            ),
            Module(
                name="to_out",
                class_name="Linear",
                stage="diffusion",
                ops=(linear(ROWS, DIM, DIM, bias=False, act_dtype=BF16, weight_dtype=BF16),),
            ),
        ),
        ops=(
            rope(2 * ROWS * DIM, dtype=BF16, table_numel=TOKENS * HEAD_DIM, table_dtype=FP32),
            # q, k, v: [B, heads, tokens, head_dim]
            scaled_dot_product_attention(B, HEADS, TOKENS, TOKENS, HEAD_DIM, dtype=BF16),
        ),
    )
    norm = Module(
        name="norm",
        class_name="LayerNorm",
        stage="diffusion",
        ops=(with_parameters(layer_norm(ROWS, DIM, dtype=FP32), 2 * DIM, dtype=FP32),),
    )
    mlp = Module(
        name="mlp",
        class_name="MLP",
        stage="diffusion",
        calls=2,  # applied twice per block
        ops=(
            linear(ROWS, DIM, 4 * DIM, bias=True, act_dtype=BF16, weight_dtype=BF16),
            gelu_tanh(ROWS * 4 * DIM, dtype=BF16),
            linear(ROWS, 4 * DIM, DIM, bias=True, act_dtype=BF16, weight_dtype=BF16),
            add(ROWS * DIM, dtype=BF16, inplace=True),
        ),
    )
    return Module(name="block", class_name="Block", stage="diffusion", children=(norm, attention, mlp))


def toy_root() -> Module:
    """The declaration: a text encoder, a denoiser called 2·steps times with 3 blocks, a decoder."""
    encoder = Module(
        name="encoder",
        class_name="TextEncoder",
        stage="text_encoder",
        children=(
            Module(
                name="embed",
                class_name="Embedding",
                stage="text_encoder",
                ops=(with_parameters(embedding(B * L, DIM, dtype=BF16), 1000 * DIM, dtype=BF16),),
            ),
            Module(
                name="proj",
                class_name="Linear",
                stage="text_encoder",
                ops=(linear(B * L, DIM, DIM, bias=True, act_dtype=BF16, weight_dtype=BF16),),
            ),
        ),
    )
    patch = conv3d(
        B,
        16,
        DIM,
        kernel=(1, 2, 2),
        out_spatial=(LATENT_FRAMES, sympy.floor(H / 16), sympy.floor(W / 16)),
        in_spatial=(LATENT_FRAMES, 2 * sympy.floor(H / 16), 2 * sympy.floor(W / 16)),
        act_dtype=BF16,
        weight_dtype=BF16,
    )
    denoiser = Module(
        name="denoiser",
        class_name="Denoiser",
        stage="diffusion",
        params={"num_layers": BLOCKS},
        calls=2 * S,
        children=(
            Module(name="patch", class_name="Conv3d", stage="diffusion", ops=(patch,)),
            Repeated(template=_block(), count=BLOCKS),
        ),
    )
    frame_conv = conv2d(
        B,
        16,
        3,
        kernel=(3, 3),
        out_spatial=(8 * sympy.floor(H / 8), 8 * sympy.floor(W / 8)),
        in_spatial=(8 * sympy.floor(H / 8) + 2, 8 * sympy.floor(W / 8) + 2),
        act_dtype=FP32,
        weight_dtype=FP32,
    )
    decoder = Module(
        name="decoder",
        class_name="Decoder",
        stage="vae",
        children=(
            Module(name="frame_conv", class_name="Conv2d", stage="vae", calls=F, ops=(frame_conv,)),
            Module(
                name="cast",
                class_name="Cast",
                stage="vae",
                ops=(to_copy(B * 3 * F * H * W, in_dtype=FP32, out_dtype=BF16),),
            ),
        ),
    )
    return Module(name="toy", class_name="ToyPipeline", stage="other", children=(encoder, denoiser, decoder))


@functools.cache
def toy_tree() -> ModuleTree:
    """The toy declaration built under the root id ``toy`` (built once per test session)."""
    return build_tree(toy_root(), "toy")
