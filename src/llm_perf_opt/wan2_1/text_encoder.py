"""The umT5-XXL text encoder (official ``T5Encoder``), declared module by module.

Module names and classes are those of the official implementation (``wan/modules/t5.py`` of
Wan-Video/Wan2.1, ``umt5_xxl(encoder_only=True)``), so ids read ``text_encoder.blocks.7.attn.q``. One
call of the root is one forward of the encoder on ``B`` prompts of ``L`` tokens each: both pipelines
pad every prompt to 512 tokens, and run the encoder once for the prompt and once for the negative
prompt (the pipeline counts the calls, not this tree).

The block is pre-norm: ``x + attn(norm1(x))``, then ``x + ffn(norm2(x))``, where the norms are RMS
norms (``T5LayerNorm``), the attention has no ``1/√d`` scaling and adds a relative position bias that
every block computes for itself (``shared_pos=False``), and the FFN is gated: ``fc2(fc1(x)·gelu(gate(x)))``
with the tanh GELU.

FLOPs follow ``FlopCounterMode``. Bytes follow the official code's op structure at the profile's
``text_encoder_dtype`` (bf16 in both profiles): the attention core materialises the ``[B, n, L, L]``
bias and scores and runs the softmax in fp32, as ``T5Attention`` does. docs/encoders.md lists the
conventions and what is left out (the bucketing arithmetic of the relative positions, the zero fill of
the bias, the element-wise chain of the hand-written GELU counted as one kernel).
"""

from __future__ import annotations

import functools
from typing import Final

import sympy
from attrs import frozen

from llm_perf_opt.symbolic.dtypes import BOOL, FP32, INT64, DType
from llm_perf_opt.symbolic.module import Module, Repeated
from llm_perf_opt.symbolic.primitives import (
    OpCall,
    absolute,
    add,
    arange,
    bmm,
    clone,
    compare,
    constant_pad,
    div,
    embedding,
    full_like,
    gelu_tanh_eager,
    linear,
    log,
    mean,
    minimum,
    mul,
    pow_scalar,
    rsqrt,
    scaled_dot_product_attention,
    softmax,
    sub_broadcast,
    to_copy,
    where,
    with_parameters,
)
from llm_perf_opt.symbolic.symbols import B, L
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.layers import cast

__all__ = ["UMT5_XXL", "T5EncoderConfig", "declare_text_encoder"]

STAGE: Final = "text_encoder"


@frozen(kw_only=True)
class T5EncoderConfig:
    """Constructor parameters of the official ``T5Encoder`` (``umt5_xxl`` in ``wan/modules/t5.py``).

    Attributes:
        vocab_size: token embedding rows.
        dim: model width.
        dim_attn: width of q, k, v (``num_heads · head_dim``).
        dim_ffn: hidden width of the gated FFN.
        num_heads: attention heads.
        num_layers: blocks (``encoder_layers``).
        num_buckets: relative-position buckets, half per direction (bidirectional).
        max_distance: relative distance from which all positions share the last bucket.
        eps: epsilon of the RMS norms.
        dropout: dropout probability (inactive at inference).
    """

    vocab_size: int
    dim: int
    dim_attn: int
    dim_ffn: int
    num_heads: int
    num_layers: int
    num_buckets: int
    max_distance: int
    eps: float
    dropout: float

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.dim_attn // self.num_heads


UMT5_XXL: Final = T5EncoderConfig(
    vocab_size=256_384,
    dim=4096,
    dim_attn=4096,
    dim_ffn=10_240,
    num_heads=64,
    num_layers=24,
    num_buckets=32,
    max_distance=128,
    eps=1e-6,
    dropout=0.1,
)
"""umT5-XXL as Wan2.1 uses it (``umt5_xxl`` in ``wan/modules/t5.py``; ``T5RelativeEmbedding``'s default
``max_dist=128``; ``T5LayerNorm``'s default ``eps=1e-6``)."""


def _module(name: str, class_name: str, ops: list[OpCall], **params: object) -> Module:
    return Module(name=name, class_name=class_name, stage=STAGE, params=params, ops=tuple(ops))


def _linear(name: str, rows: sympy.Expr, in_features: int, out_features: int, dtype: DType) -> Module:
    """``nn.Linear`` without bias, weights and activations at ``dtype`` (no autocast)."""
    # x:[rows, in] @ Wᵀ:[in, out] → y:[rows, out]
    call = linear(rows, in_features, out_features, bias=False, act_dtype=dtype, weight_dtype=dtype)
    return _module(name, "Linear", [call], in_features=in_features, out_features=out_features, bias=False)


def _layer_norm(name: str, rows: sympy.Expr, dim: int, dtype: DType, eps: float) -> Module:
    """``T5LayerNorm`` as both implementations write it, kernel by kernel.

    ``x * rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)`` (official ``wan/modules/t5.py``;
    transformers ``UMT5LayerNorm`` the same), cast back to the weight's dtype, then ``weight * x``:
    ``_to_copy, pow, mean, add, rsqrt``, a ``mul`` of the bf16 x by the fp32 per-row factor (fp32
    out), ``_to_copy``, the weight ``mul``. The hand-written norm never reaches ``aten::rms_norm``,
    so a GPU runs these kernels too.
    """
    numel = rows * dim
    # w:[dim] · x:[rows, dim] → y:[rows, dim]
    scale = with_parameters(mul(numel, dtype=dtype, other_numel=dim), dim, dtype=dtype)
    ops = [
        *cast(numel, dtype, FP32),
        pow_scalar(numel, dtype=FP32),
        mean(rows, dim, dtype=FP32),
        add(rows, dtype=FP32, other_numel=0),  # + eps
        rsqrt(rows, dtype=FP32),
        # x:[rows, dim] · rstd:[rows, 1] fp32 → fp32
        mul(numel, dtype=dtype, other_numel=rows, other_dtype=FP32, out_dtype=FP32),
        *cast(numel, FP32, dtype),
        scale,
    ]
    return _module(name, "T5LayerNorm", ops, dim=dim, eps=eps)


def _relative_embedding(config: T5EncoderConfig, dtype: DType, *, transformers: bool) -> Module:
    """``T5RelativeEmbedding`` (bidirectional): the per-head bias of every (query, key) pair.

    The bucket of each of the ``L²`` relative positions is looked up in an ``Embedding(num_buckets,
    num_heads)`` and the ``[L, L, n]`` result is laid out as ``[1, n, L, L]``. The bucketing arithmetic
    itself (integer and float element-wise ops on the ``L × L`` positions) is not counted.
    """
    heads, positions = config.num_heads, L**2
    # bucket:[L, L] → table rows:[L, L, n]
    lookup = with_parameters(
        embedding(positions, heads, dtype=dtype), config.num_buckets * heads, dtype=dtype
    )
    table = _module(
        "embedding", "Embedding", [lookup], num_embeddings=config.num_buckets, embedding_dim=heads
    )
    # official: [L, L, n].permute(2, 0, 1).unsqueeze(0).contiguous() → [1, n, L, L]; transformers
    # looks the table up inside the attention, which makes the bias contiguous itself
    layout = () if transformers else (to_copy(heads * positions, in_dtype=dtype, out_dtype=dtype),)
    return Module(
        name="pos_embedding",
        class_name="T5RelativeEmbedding",
        stage=STAGE,
        params={
            "num_buckets": config.num_buckets,
            "num_heads": heads,
            "bidirectional": True,
            "max_dist": config.max_distance,
        },
        children=(table,),
        ops=layout,
    )


def _attention_core(config: T5EncoderConfig, dtype: DType) -> list[OpCall]:
    """``T5Attention``'s own ops: bias, two einsums around an fp32 softmax; no ``1/√d`` scaling.

    The bias ``[B, n, L, L]`` starts as zeros, gets the block's position bias added and the padding
    keys filled (from the ``[B, L]`` token mask); each einsum lays its operands out head-major and its
    result back, one copy each.
    """
    heads, head_dim = config.num_heads, config.head_dim
    scores = B * heads * L**2
    projected = B * L * config.dim_attn
    return [
        # attn_bias:[B, n, L, L] = zeros + pos_bias:[1, n, L, L]
        add(scores, dtype=dtype, other_numel=heads * L**2),
        # attn_bias.masked_fill_(mask:[B, 1, 1, L] == 0, min): the int64 token mask, compare folded in
        mul(scores, dtype=dtype, other_numel=B * L, other_dtype=INT64, inplace=True),
        # einsum 'binc,bjnc->bnij': q and k:[B, L, n, c] copied to [B·n, L, c] and [B·n, c, L]
        to_copy(projected, in_dtype=dtype, out_dtype=dtype),
        to_copy(projected, in_dtype=dtype, out_dtype=dtype),
        # q:[B·n, L, c] @ kᵀ:[B·n, c, L] → scores:[B·n, L, L]
        bmm(B * heads, L, head_dim, L, dtype=dtype),
        # scores + attn_bias
        add(scores, dtype=dtype),
        # softmax(scores.float()).type_as(scores)
        to_copy(scores, in_dtype=dtype, out_dtype=FP32),
        softmax(scores, dtype=FP32),
        to_copy(scores, in_dtype=FP32, out_dtype=dtype),
        # einsum 'bnij,bjnc->binc': v:[B, L, n, c] copied to [B·n, L, c]
        to_copy(projected, in_dtype=dtype, out_dtype=dtype),
        # p:[B·n, L, L] @ v:[B·n, L, c] → [B·n, L, c]
        bmm(B * heads, L, L, head_dim, dtype=dtype),
        # [B, n, L, c] copied to [B, L, n·c] for o
        to_copy(projected, in_dtype=dtype, out_dtype=dtype),
    ]


def _position_buckets(config: T5EncoderConfig) -> list[OpCall]:
    """``UMT5Attention.compute_bias`` up to the table lookup: the bucket of each of the ``L²`` pairs.

    transformers ``_relative_position_bucket`` (bidirectional), op by op on int64 positions (fp32 for
    the logarithm); the official ``T5RelativeEmbedding`` runs the same arithmetic, not counted there.
    """
    pairs = L**2
    return [
        arange(L, dtype=INT64),  # context positions
        add(L, dtype=INT64, other_numel=0),  # + past_seen_tokens
        arange(L, dtype=INT64),  # memory positions
        # memory:[1, L] − context:[L, 1] → relative:[L, L]
        sub_broadcast(
            pairs, self_numel=L, self_dtype=INT64, other_numel=L, other_dtype=INT64, out_dtype=INT64
        ),
        compare(pairs, dtype=INT64),  # relative > 0
        to_copy(pairs, in_dtype=BOOL, out_dtype=INT64),
        mul(pairs, dtype=INT64, other_numel=0),  # · num_buckets
        add(pairs, dtype=INT64, other_numel=0),  # 0 + …
        absolute(pairs, dtype=INT64),
        compare(pairs, dtype=INT64),  # is_small
        to_copy(pairs, in_dtype=INT64, out_dtype=FP32),
        div(pairs, dtype=FP32),  # / max_exact
        log(pairs, dtype=FP32),
        div(pairs, dtype=FP32),  # / log(max_distance / max_exact)
        mul(pairs, dtype=FP32, other_numel=0),  # · (num_buckets − max_exact)
        to_copy(pairs, in_dtype=FP32, out_dtype=INT64),
        add(pairs, dtype=INT64, other_numel=0),  # max_exact + …
        full_like(pairs, dtype=INT64),
        minimum(pairs, dtype=INT64),
        where(pairs, dtype=INT64),
        add(pairs, dtype=INT64, inplace=True),  # relative_buckets += …
    ]


def _sdpa_core(config: T5EncoderConfig, dtype: DType) -> list[OpCall]:
    """transformers' SDPA path on a GPU: the position bias as an additive mask of a fused kernel.

    The bucketed pairs (:func:`_position_buckets`), the bias made contiguous (``[1, n, L, L]``, a copy
    for ``L > 1``), and
    ``F.scaled_dot_product_attention`` with it as ``attn_mask``: a CUDA build rejects flash attention
    for any mask (``check_for_attn_mask`` in ``can_use_flash_attention``,
    ``aten/src/ATen/native/transformers/cuda/sdp_utils.cpp``) and runs the memory-efficient kernel,
    which reads q, k, v and the bias (broadcast over the batch) and, without gradients, writes only the
    output; first it pads a copy of the bias to rows of a multiple of 8 elements when ``L`` is not one
    (``preprocess_mask``, ``aten/src/ATen/native/transformers/attention.cpp``). The head-major views
    of q, k, v and the output need no copy.
    """
    heads, head_dim = config.num_heads, config.head_dim
    bias = heads * L**2
    aligned = sympy.ceiling(L / 8) * 8
    # 1 where L is not a multiple of 8, else 0
    misaligned = sympy.ceiling((aligned - L) / 8)
    return [
        *_position_buckets(config),
        # the permuted [L, L, n] lookup is already contiguous as [1, n, 1, 1] for one token
        clone(sympy.ceiling((L - 1) / L) * bias, dtype=dtype),
        *constant_pad(misaligned * bias, misaligned * heads * L * aligned, dtype=dtype),
        scaled_dot_product_attention(B, heads, L, L, head_dim, dtype=dtype, mask_numel=bias, logsumexp=False),
    ]


def _attention(config: T5EncoderConfig, dtype: DType, *, transformers: bool) -> Module:
    rows = B * L
    dim, dim_attn = config.dim, config.dim_attn
    children = [
        _linear("q", rows, dim, dim_attn, dtype),
        _linear("k", rows, dim, dim_attn, dtype),
        _linear("v", rows, dim, dim_attn, dtype),
        _linear("o", rows, dim_attn, dim, dtype),
    ]
    return Module(
        name="attn",
        class_name="T5Attention",
        stage=STAGE,
        params={"dim": dim, "dim_attn": dim_attn, "num_heads": config.num_heads, "dropout": config.dropout},
        children=tuple(children),
        ops=tuple(_sdpa_core(config, dtype) if transformers else _attention_core(config, dtype)),
    )


def _feed_forward(config: T5EncoderConfig, dtype: DType) -> Module:
    """``T5FeedForward``: ``fc2(fc1(x) · gate(x))`` with ``gate = Sequential(Linear, GELU(tanh))``."""
    rows = B * L
    dim, dim_ffn = config.dim, config.dim_ffn
    hidden = rows * dim_ffn
    activation = gelu_tanh_eager(hidden, dtype=dtype)
    gate = Module(
        name="gate",
        class_name="Sequential",
        stage=STAGE,
        children=(
            _linear("0", rows, dim, dim_ffn, dtype),
            # the official GELU class (transformers' NewGELUActivation the same), eight kernels:
            # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
            _module("1", "GELU", activation, approximate="tanh"),
        ),
    )
    return Module(
        name="ffn",
        class_name="T5FeedForward",
        stage=STAGE,
        params={"dim": dim, "dim_ffn": dim_ffn, "dropout": config.dropout},
        children=(
            gate,
            _linear("fc1", rows, dim, dim_ffn, dtype),
            _linear("fc2", rows, dim_ffn, dim, dtype),
        ),
        # fc1(x) · gate(x)
        ops=(mul(hidden, dtype=dtype),),
    )


def _block(config: T5EncoderConfig, dtype: DType, *, transformers: bool) -> Module:
    """``T5SelfAttention``: pre-norm attention with its own relative position bias, then the FFN."""
    rows = B * L
    numel = rows * config.dim
    children = [
        _layer_norm("norm1", rows, config.dim, dtype, config.eps),
        _attention(config, dtype, transformers=transformers),
        _layer_norm("norm2", rows, config.dim, dtype, config.eps),
        _feed_forward(config, dtype),
        _relative_embedding(config, dtype, transformers=transformers),
    ]
    return Module(
        name="blocks",
        class_name="T5SelfAttention",
        stage=STAGE,
        params={
            "dim": config.dim,
            "dim_attn": config.dim_attn,
            "dim_ffn": config.dim_ffn,
            "num_heads": config.num_heads,
            "num_buckets": config.num_buckets,
            "shared_pos": False,
            "dropout": config.dropout,
        },
        children=tuple(children),
        # x + attn(norm1(x)); x + ffn(norm2(x)) (fp16_clamp does nothing for bf16)
        ops=(add(numel, dtype=dtype), add(numel, dtype=dtype)),
    )


@functools.cache
def declare_text_encoder(implementation: Implementation, config: T5EncoderConfig = UMT5_XXL) -> Module:
    """The official ``T5Encoder`` as ``implementation`` runs it: one forward on ``B`` prompts of ``L`` tokens.

    Every prompt runs at the length it is given (the caller pads to 512).
    """
    dtype = implementation.text_encoder_dtype
    rows = B * L
    token_embedding = _module(
        "token_embedding",
        "Embedding",
        # ids:[B, L] → x:[B, L, dim]
        [
            with_parameters(
                embedding(rows, config.dim, dtype=dtype), config.vocab_size * config.dim, dtype=dtype
            )
        ],
        num_embeddings=config.vocab_size,
        embedding_dim=config.dim,
    )
    return Module(
        name="text_encoder",
        class_name="T5Encoder",
        stage=STAGE,
        params={
            "vocab": config.vocab_size,
            "dim": config.dim,
            "dim_attn": config.dim_attn,
            "dim_ffn": config.dim_ffn,
            "num_heads": config.num_heads,
            "num_layers": config.num_layers,
            "num_buckets": config.num_buckets,
            "shared_pos": False,
            "dropout": config.dropout,
        },
        children=(
            token_embedding,
            Repeated(
                template=_block(config, dtype, transformers=implementation.text_encoder_transformers),
                count=config.num_layers,
                name="blocks",
            ),
            _layer_norm("norm", rows, config.dim, dtype, config.eps),
        ),
    )
