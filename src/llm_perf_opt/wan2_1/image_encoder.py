"""The CLIP ViT-H/14 image encoder (official ``VisionTransformer``), declared module by module.

Module names and classes are those of the official implementation (``wan/modules/clip.py`` of
Wan-Video/Wan2.1: the ``visual`` tower of ``clip_xlm_roberta_vit_h_14``), so ids read
``image_encoder.transformer.7.attn.to_qkv``. One call of the root encodes ``B·num_images`` images of
224×224 pixels into 257 tokens each (16×16 patches and a class token): one image per video for I2V,
the first and the last frame for FLF2V.

The official code returns the output of the penultimate block (``use_31_block=True``: 31 of the 32
blocks run, then nothing: no ``post_norm``, no ``head``); diffusers takes ``hidden_states[-2]`` of
transformers' ``CLIPVisionModel``, which runs all 32 blocks and ``post_layernorm`` on each image's
class token. The implementation profile decides (``image_encoder_layers``,
``image_encoder_transformers``), and the tree declares exactly what runs: parameters held but never
run (the official 32nd block, ``post_norm`` and the 1280×1024 ``head``) are not in it.

FLOPs follow ``FlopCounterMode``. Bytes follow the profile: official fp16 weights under
``autocast(float16)`` with layer norms computed in fp32; diffusers fp32 (docs/encoders.md).
"""

from __future__ import annotations

import functools
from typing import Final

import sympy
from attrs import frozen

from llm_perf_opt.symbolic.dtypes import FP32, DType
from llm_perf_opt.symbolic.module import Module, Repeated
from llm_perf_opt.symbolic.primitives import (
    OpCall,
    add,
    cat,
    conv2d,
    embedding,
    gelu,
    layer_norm,
    linear,
    scaled_dot_product_attention,
    with_parameters,
)
from llm_perf_opt.symbolic.symbols import B
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.layers import cast

__all__ = ["CLIP_VIT_H_14", "VisionTransformerConfig", "declare_image_encoder"]

STAGE: Final = "other"
QKV: Final = 3
"""q, k and v: the fused ``to_qkv`` projects to three times the width."""


@frozen(kw_only=True)
class VisionTransformerConfig:
    """Constructor parameters of the official ``VisionTransformer`` (the ``visual`` tower).

    Attributes:
        image_size: input height and width in pixels.
        patch_size: patch height and width (the patch convolution's kernel and stride).
        in_channels: image channels.
        dim: model width.
        mlp_ratio: MLP hidden width over ``dim``.
        num_heads: attention heads.
        num_layers: blocks held (the implementation decides how many run).
        out_dim: width of the ``head`` projection (not run by Wan2.1).
        eps: epsilon of the layer norms.
    """

    image_size: int
    patch_size: int
    in_channels: int
    dim: int
    mlp_ratio: int
    num_heads: int
    num_layers: int
    out_dim: int
    eps: float

    @property
    def grid(self) -> int:
        """Patches along each side."""
        return self.image_size // self.patch_size

    @property
    def tokens(self) -> int:
        """Tokens per image: the patches and one class token."""
        return self.grid**2 + 1

    @property
    def mlp_dim(self) -> int:
        """Hidden width of the MLP."""
        return self.dim * self.mlp_ratio

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.dim // self.num_heads


CLIP_VIT_H_14: Final = VisionTransformerConfig(
    image_size=224,
    patch_size=14,
    in_channels=3,
    dim=1280,
    mlp_ratio=4,
    num_heads=16,
    num_layers=32,
    out_dim=1024,
    eps=1e-5,
)
"""The visual tower of ``clip_xlm_roberta_vit_h_14`` (``wan/modules/clip.py``: vision_dim 1280,
vision_heads 16, vision_layers 32, patch 14, image 224, pool 'token', pre_norm, activation 'gelu',
``norm_eps=1e-5``, ``embed_dim=1024``)."""


def _module(name: str, class_name: str, ops: list[OpCall], **params: object) -> Module:
    return Module(name=name, class_name=class_name, stage=STAGE, params=params, ops=tuple(ops))


def _linear(name: str, rows: sympy.Expr, in_features: int, out_features: int, dtype: DType) -> Module:
    """``nn.Linear`` with bias at the encoder's dtype (fp16 weights need no autocast re-cast)."""
    # x:[rows, in] @ Wᵀ:[in, out] + b:[out] → y:[rows, out]
    call = linear(rows, in_features, out_features, bias=True, act_dtype=dtype, weight_dtype=dtype)
    return _module(name, "Linear", [call], in_features=in_features, out_features=out_features, bias=True)


def _qkv(rows: sympy.Expr, dim: int, dtype: DType, separate: bool) -> Module:
    """``to_qkv``: one Linear(dim → 3·dim) officially; transformers' q_proj, k_proj, v_proj.

    Separate projections do the same FLOPs and hold the same parameters, but each reads the input.
    """
    if not separate:
        return _linear("to_qkv", rows, dim, QKV * dim, dtype)
    # q, k, v each: x:[rows, dim] @ Wᵀ:[dim, dim] + b:[dim] → [rows, dim]
    calls = [linear(rows, dim, dim, bias=True, act_dtype=dtype, weight_dtype=dtype) for _ in range(QKV)]
    return _module("to_qkv", "Linear", calls, in_features=dim, out_features=QKV * dim, bias=True)


def _layer_norm(name: str, rows: sympy.Expr, dim: int, dtype: DType, eps: float) -> Module:
    """``LayerNorm(x.float()).type_as(x)``: computed in fp32 whatever the weights' dtype.

    Under autocast (fp16 weights) the layer norm is an fp32 op: its weight and bias are re-cast to
    fp32 on every call.
    """
    numel = rows * dim
    norm = layer_norm(rows, dim, dtype=FP32, affine=True, weight_dtype=FP32)
    ops = [
        *cast(numel, dtype, FP32),
        *cast(sympy.Integer(2 * dim), dtype, FP32),
        with_parameters(norm, 2 * dim, dtype=dtype),
        *cast(numel, FP32, dtype),
    ]
    return _module(name, "LayerNorm", ops, normalized_shape=dim, eps=eps)


def _attention(config: VisionTransformerConfig, images: sympy.Expr, dtype: DType, separate: bool) -> Module:
    """``SelfAttention``: q, k, v projection, fused attention (scale 1/√d), output projection."""
    rows = images * config.tokens
    tokens = config.tokens
    # q:[N, n, 257, d] · k:[N, n, 257, d] · v:[N, n, 257, d] → out:[N, n, 257, d]
    core = scaled_dot_product_attention(
        images, config.num_heads, tokens, tokens, config.head_dim, dtype=dtype
    )
    return Module(
        name="attn",
        class_name="SelfAttention",
        stage=STAGE,
        params={"dim": config.dim, "num_heads": config.num_heads, "causal": False},
        children=(
            _qkv(rows, config.dim, dtype, separate),
            _linear("proj", rows, config.dim, config.dim, dtype),
        ),
        ops=(core,),
    )


def _block(config: VisionTransformerConfig, images: sympy.Expr, dtype: DType, separate: bool) -> Module:
    """``AttentionBlock`` (pre-norm): ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""
    rows = images * config.tokens
    dim, mlp_dim = config.dim, config.mlp_dim
    mlp = Module(
        name="mlp",
        class_name="Sequential",
        stage=STAGE,
        children=(
            _linear("0", rows, dim, mlp_dim, dtype),
            _module("1", "GELU", [gelu(rows * mlp_dim, dtype=dtype)], approximate="none"),
            _linear("2", rows, mlp_dim, dim, dtype),
        ),
    )
    return Module(
        name="transformer",
        class_name="AttentionBlock",
        stage=STAGE,
        params={
            "dim": dim,
            "mlp_ratio": config.mlp_ratio,
            "num_heads": config.num_heads,
            "post_norm": False,
            "activation": "gelu",
            "norm_eps": config.eps,
        },
        children=(
            _layer_norm("norm1", rows, dim, dtype, config.eps),
            _attention(config, images, dtype, separate),
            _layer_norm("norm2", rows, dim, dtype, config.eps),
            mlp,
        ),
        ops=(add(rows * dim, dtype=dtype), add(rows * dim, dtype=dtype)),
    )


def _patch_embedding(config: VisionTransformerConfig, images: sympy.Expr, dtype: DType) -> Module:
    """``Conv2d(3 → dim, kernel = stride = patch, bias=False)`` (no bias: ``pre_norm`` follows)."""
    p, g, size = config.patch_size, config.grid, config.image_size
    # pixels:[N, 3, 224, 224] ⋆ W:[dim, 3, 14, 14] → [N, dim, 16, 16]
    conv = conv2d(
        images,
        config.in_channels,
        config.dim,
        kernel=(p, p),
        out_spatial=(g, g),
        in_spatial=(size, size),
        bias=False,
        act_dtype=dtype,
        weight_dtype=dtype,
    )
    return _module(
        "patch_embedding",
        "Conv2d",
        [conv],
        in_channels=config.in_channels,
        out_channels=config.dim,
        kernel_size=p,
        stride=p,
        bias=False,
    )


def _embedding_ops(
    config: VisionTransformerConfig, implementation: Implementation, images: sympy.Expr
) -> list[OpCall]:
    """The root's own ops: input cast, class token, position embedding."""
    dtype = implementation.image_encoder_dtype
    dim, tokens = config.dim, config.tokens
    pixels = images * config.in_channels * config.image_size**2
    numel = images * tokens * dim
    # cat([cls_embedding.expand(N, 1, dim), patches:[N, 256, dim]]) → [N, 257, dim]; the expanded
    # class embedding is read once
    patches = images * (tokens - 1) * dim
    joined = cat([images * dim, patches], dtype=dtype, stored_numels=[dim, patches])
    with_class_token = with_parameters(joined, dim, dtype=dtype)
    # x:[N, 257, dim] + pos_embedding:[1, 257, dim]
    position = with_parameters(add(numel, dtype=dtype, other_numel=tokens * dim), tokens * dim, dtype=dtype)
    ops = [
        # the normalised pixels are fp32; the patch convolution runs at the weights' dtype
        *cast(pixels, FP32, dtype),
        with_class_token,
    ]
    if implementation.image_encoder_transformers:
        # position_embedding(position_ids): rows 0…256 of an Embedding(257, dim)
        ops.append(embedding(tokens, dim, dtype=dtype))
    ops.append(position)
    return ops


@functools.cache
def declare_image_encoder(
    num_images: int, implementation: Implementation, config: VisionTransformerConfig = CLIP_VIT_H_14
) -> Module:
    """The ``VisionTransformer`` as ``implementation`` runs it, on ``B·num_images`` images.

    ``implementation.image_encoder_layers`` blocks run; with ``image_encoder_transformers`` the q, k, v
    projections are separate, the positions are looked up, and ``post_norm`` normalises each image's
    class token after the last block.
    """
    dtype = implementation.image_encoder_dtype
    separate = implementation.image_encoder_transformers
    images = B * num_images
    rows = images * config.tokens
    children: list[Module | Repeated] = [
        _patch_embedding(config, images, dtype),
        _layer_norm("pre_norm", rows, config.dim, dtype, config.eps),
        Repeated(
            template=_block(config, images, dtype, separate),
            count=implementation.image_encoder_layers,
            name="transformer",
        ),
    ]
    if implementation.image_encoder_transformers:
        # post_layernorm(last_hidden_state[:, 0]): the pooled class token of every image
        children.append(_layer_norm("post_norm", images, config.dim, dtype, config.eps))
    return Module(
        name="image_encoder",
        class_name="VisionTransformer",
        stage=STAGE,
        params={
            "image_size": config.image_size,
            "patch_size": config.patch_size,
            "dim": config.dim,
            "mlp_ratio": config.mlp_ratio,
            "out_dim": config.out_dim,
            "num_heads": config.num_heads,
            "num_layers": config.num_layers,
            "pool_type": "token",
            "pre_norm": True,
            "post_norm": False,
            "activation": "gelu",
            "norm_eps": config.eps,
        },
        children=tuple(children),
        ops=tuple(_embedding_ops(config, implementation, images)),
    )
