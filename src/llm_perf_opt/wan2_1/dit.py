"""The Wan2.1 diffusion transformer (``WanModel``), declared module by module.

Module names and classes are those of the official implementation (``wan/modules/model.py``), so
ids read ``diffusion.blocks.12.self_attn.q``. One call of the root is one forward of the
transformer on a batch of ``B`` videos:

- video tokens ``Lv = ((F − 1)//4 + 1)·(H/16)·(W/16)`` (:mod:`.geometry`),
- text tokens ``L`` (the caller pads to 512, as the pipelines do),
- image tokens ``Li`` = 257 per conditioning image (I2V 257, FLF2V 514), 0 for T2V.

FLOPs follow ``FlopCounterMode``; they do not depend on the implementation profile. Bytes do: each
op reads and writes at the dtypes the profile says (:mod:`.implementation`), including the casts
the real code performs (autocast's per-call weight re-casts and fp32 → bf16 activation casts in the
official code; ``.float()`` / ``.type_as`` round trips around norms and residuals in diffusers).
Under the ``diffusers`` profile every module declares the aten ops eager PyTorch runs for it, in
order, with their dtypes and shapes, and on the module the real code runs them in (a cast written as
``norm1(x.float())`` runs in the block's forward, not in ``norm1``), so its bytes equal the eager byte
counter's module by module (:mod:`llm_perf_opt.reference.counting`); ``torch.nn.RMSNorm`` is the fused
kernel a CUDA build dispatches. The official profile's remaining conventions (its RMS norm and rotary
embedding as one primitive each, the varlen packing copies left out) are listed, with their size, in
docs/dit.md.
"""

from __future__ import annotations

import functools
from typing import Final

import sympy

from llm_perf_opt.symbolic.dtypes import BF16, FP32, INT64, DType
from llm_perf_opt.symbolic.module import Module, Repeated
from llm_perf_opt.symbolic.primitives import (
    OpCall,
    add,
    add_broadcast,
    addmm,
    arange,
    cat,
    clone,
    convolution,
    cos,
    div,
    exp,
    gelu,
    gelu_tanh,
    layer_norm,
    mul,
    mul_broadcast,
    parameter_held,
    rms_norm,
    rope,
    rotary_interleaved,
    scaled_dot_product_attention,
    silu,
    sin,
    to_copy,
    with_parameters,
)
from llm_perf_opt.symbolic.symbols import B, F, H, L, W
from llm_perf_opt.wan2_1.geometry import video_tokens_at
from llm_perf_opt.wan2_1.implementation import Implementation, WeightRole
from llm_perf_opt.wan2_1.layers import cast, promoted
from llm_perf_opt.wan2_1.variants import WanVariant

__all__ = ["MODULATION_CHUNKS", "declare_dit"]

STAGE: Final = "diffusion"
MODULATION_CHUNKS: Final = 6
"""A block's modulation: shift, scale, gate for self-attention, and the same for the FFN."""
HEAD_MODULATION_CHUNKS: Final = 2
"""The head's modulation: shift and scale."""


def _more_than_one(count: sympy.Expr) -> sympy.Expr:
    """1 where the positive integer ``count`` exceeds 1, else 0: ``⌈(count − 1)/count⌉``.

    For a copy eager PyTorch makes only when a dimension is longer than one (a ceiling, so the
    numpy evaluators need nothing beyond what convolution sizes already use).
    """
    return sympy.ceiling((count - 1) / count)


def _latent_grid(variant: WanVariant) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """Latent frames, height and width at the variant's VAE stride: ``((F − 1)//t + 1, H/h, W/w)``."""
    vt, vh, vw = variant.vae_stride
    return sympy.floor((F - 1) / vt) + 1, H / vh, W / vw


def _tokens(variant: WanVariant) -> sympy.Expr:
    """Video tokens per sample at the variant's VAE stride and patch (:mod:`.geometry`)."""
    return video_tokens_at(variant.vae_stride, variant.patch_size)


def _time_rows(variant: WanVariant, impl: Implementation) -> sympy.Expr:
    """Rows of the time embedding and the modulation: ``B``, or ``B·Lv`` where ``impl`` gives every
    video token its own timestep (:attr:`WanVariant.timestep_per_token`)."""
    return B * _tokens(variant) if impl.name in variant.timestep_per_token else B


def _module(name: str, class_name: str, ops: list[OpCall], **params: object) -> Module:
    return Module(name=name, class_name=class_name, stage=STAGE, params=params, ops=tuple(ops))


def _container(name: str, class_name: str, children: list[Module | Repeated], **params: object) -> Module:
    return Module(name=name, class_name=class_name, stage=STAGE, params=params, children=tuple(children))


def _linear(
    name: str,
    impl: Implementation,
    rows: sympy.Expr,
    in_features: int,
    out_features: int,
    *,
    x_dtype: DType,
    role: WeightRole = WeightRole.MATMUL,
    fp32_region: bool = False,
    strided_batch: bool = False,
) -> Module:
    """``nn.Linear`` as the implementation runs it: input cast, weight re-cast, then ``addmm``.

    Under autocast (official) an fp32 input is cast to the compute dtype on every call, and so are
    the fp32 weight and bias (autocast caches casts only for tensors that require grad).
    ``strided_batch``: the input is a slice along tokens of a ``[B, Li + L, D]`` context (diffusers'
    image cross-attention); for ``B > 1`` it is not contiguous, so ``aten.linear`` runs ``bmm`` (the
    weight broadcast, read once) and then adds the bias as a kernel of its own, which reads and writes
    the output once more: counted as that add, for ``B > 1`` only.
    """
    compute = impl.linear_dtype(role, fp32_region=fp32_region)
    held = impl.weights(role)
    count = in_features * out_features + out_features
    # x:[rows, in] @ Wᵀ:[in, out] + b:[out] → y:[rows, out]
    gemm = addmm(rows, in_features, out_features, dtype=compute)
    ops = [
        *cast(rows * in_features, x_dtype, compute),
        *cast(sympy.Integer(count), held, compute),
        with_parameters(gemm, count, dtype=held),
    ]
    if strided_batch:
        # y:[B, rows/B, out] + b:[out] as its own kernel when B > 1 (the bias read is addmm's above)
        ops.append(add(_more_than_one(B) * rows * out_features, dtype=compute, other_numel=0))
    return _module(name, "Linear", ops, in_features=in_features, out_features=out_features, bias=True)


def _layer_norm(
    name: str,
    impl: Implementation,
    rows: sympy.Expr,
    dim: int,
    *,
    affine: bool,
    in_dtype: DType,
    out_dtype: DType,
    eps: float,
) -> Module:
    """``WanLayerNorm``: computed in fp32 (``x.float()``), cast to ``out_dtype`` afterwards."""
    held = impl.weights(WeightRole.NORM)
    norm = layer_norm(rows, dim, dtype=FP32, affine=affine, weight_dtype=held)
    if affine:
        norm = with_parameters(norm, 2 * dim, dtype=held)
    ops = [*cast(rows * dim, in_dtype, FP32), norm, *cast(rows * dim, FP32, out_dtype)]
    return _module(name, "WanLayerNorm", ops, dim=dim, eps=eps, elementwise_affine=affine)


def _rms_norm(name: str, impl: Implementation, rows: sympy.Expr, dim: int, *, eps: float) -> Module:
    """``WanRMSNorm`` over the full ``dim`` (diffusers: ``torch.nn.RMSNorm``).

    Official (``wan/modules/model.py``, ``WanRMSNorm.forward``/``_norm``):
    ``x * rsqrt(x.pow(2).mean(-1) + eps)`` on ``x.float()``, ``.type_as(x)``, then ``* self.weight``;
    the output dtype is the promotion of the input (the matmul dtype) and the weight's. Its arithmetic
    is still one fp32 ``rms_norm`` here; the eager sequence is
    :func:`~llm_perf_opt.symbolic.primitives.rms_norm_eager`, and docs/dit.md sizes the difference and
    says why the calibration keeps the one kernel for now. diffusers: input and
    weight are both bf16, so a CUDA build runs one ``_fused_rms_norm`` kernel (docs/dit.md).
    """
    act, held = impl.matmul_dtype, impl.weights(WeightRole.QK_NORM)
    numel = rows * dim
    if impl.diffusers_dit:
        fused = rms_norm(rows, dim, dtype=act, affine=True, weight_dtype=held)
        return _module(name, "WanRMSNorm", [with_parameters(fused, dim, dtype=held)], dim=dim, eps=eps)
    # x:[rows, dim] · w:[dim] → y:[rows, dim]
    scale = mul(numel, dtype=act, other_numel=dim, other_dtype=held, out_dtype=promoted(act, held))
    ops = [
        *cast(numel, act, FP32),
        rms_norm(rows, dim, dtype=FP32, affine=False),
        *cast(numel, FP32, act),
        with_parameters(scale, dim, dtype=held),
    ]
    return _module(name, "WanRMSNorm", ops, dim=dim, eps=eps)


def _activation(name: str, class_name: str, op: OpCall, **params: object) -> Module:
    return _module(name, class_name, [op], **params)


def _qk_dtype(impl: Implementation) -> DType:
    """dtype of q and k after their RMS norms (bf16 activation times the norm weight)."""
    return promoted(impl.matmul_dtype, impl.weights(WeightRole.QK_NORM))


def _attention_core(
    impl: Implementation, q_rows: sympy.Expr, kv_len: sympy.Expr, heads: int, head_dim: int
) -> list[OpCall]:
    """``flash_attention``: q and k cast to the matmul dtype, fused attention, output cast back.

    ``q_rows`` is B·Sq (queries over the batch); ``kv_len`` is Sk per sample. v comes straight
    from its Linear at the matmul dtype.
    """
    act, qk = impl.matmul_dtype, _qk_dtype(impl)
    dim = heads * head_dim
    # q:[B, n, Sq, d] · k:[B, n, Sk, d] · v:[B, n, Sk, d] → out:[B, n, Sq, d]
    core = scaled_dot_product_attention(B, heads, q_rows / B, kv_len, head_dim, dtype=act)
    return [
        *cast(q_rows * dim, qk, act),
        *cast(B * kv_len * dim, qk, act),
        core,
        *cast(q_rows * dim, act, qk),
    ]


def _rotary(
    impl: Implementation, rows: sympy.Expr, dim: int, head_dim: int, tokens: sympy.Expr
) -> list[OpCall]:
    """3-D rotary embedding of one of q, k: ``rows`` tokens of ``dim`` channels, ``tokens`` per sample.

    Official: per sample, the complex frequency table of the sample's tokens is rebuilt
    (``rows·head_dim/2`` complex numbers), q is cast to float64, multiplied in complex128 and cast
    back. Diffusers (``apply_rotary_emb`` in ``WanAttnProcessor``): the interleaved pairs of q are
    rotated against the fp32 cos/sin tables of one sample's tokens (``[1, Lv, 1, head_dim/2]`` after
    the ``0::2`` / ``1::2`` slices), four products, a difference, a sum and two strided copies.
    """
    qk, wide = _qk_dtype(impl), impl.rope_dtype
    numel = rows * dim
    if impl.diffusers_dit:
        return rotary_interleaved(numel, dtype=qk, table_numel=tokens * head_dim / 2, table_dtype=wide)
    # cos, sin (or the real and imaginary parts of the complex table): [tokens, head_dim/2] each
    table = rows * head_dim / 2
    if not impl.rope_upcasts:
        return [rope(numel, dtype=qk, table_numel=table, table_dtype=wide, out_dtype=qk)]
    return [
        # freqs_i = cat(freqs[0][:f], freqs[1][:h], freqs[2][:w]) expanded to [tokens, 1, d/2]
        to_copy(2 * table, in_dtype=wide, out_dtype=wide),
        *cast(numel, qk, wide),
        rope(numel, dtype=wide, table_numel=table, table_dtype=wide),
        *cast(numel, wide, qk),
    ]


def _self_attention(variant: WanVariant, impl: Implementation, rows: sympy.Expr, x_dtype: DType) -> Module:
    dim, heads, head_dim = variant.dim, variant.num_heads, variant.head_dim
    children = [
        _linear("q", impl, rows, dim, dim, x_dtype=x_dtype),
        _linear("k", impl, rows, dim, dim, x_dtype=x_dtype),
        _linear("v", impl, rows, dim, dim, x_dtype=x_dtype),
        # o reads the attention output, cast back to q's dtype
        _linear("o", impl, rows, dim, dim, x_dtype=_qk_dtype(impl)),
        _rms_norm("norm_q", impl, rows, dim, eps=variant.eps),
        _rms_norm("norm_k", impl, rows, dim, eps=variant.eps),
    ]
    ops = [
        *_rotary(impl, rows, dim, head_dim, _tokens(variant)),  # q
        *_rotary(impl, rows, dim, head_dim, _tokens(variant)),  # k
        *_attention_core(impl, rows, _tokens(variant), heads, head_dim),
    ]
    return Module(
        name="self_attn",
        class_name="WanSelfAttention",
        stage=STAGE,
        params={"dim": dim, "num_heads": heads, "window_size": list(variant.window_size), "qk_norm": True},
        children=tuple(children),
        ops=tuple(ops),
    )


def _cross_attention(variant: WanVariant, impl: Implementation, rows: sympy.Expr, x_dtype: DType) -> Module:
    dim, heads, head_dim = variant.dim, variant.num_heads, variant.head_dim
    act, qk = impl.matmul_dtype, _qk_dtype(impl)
    text_rows = B * L
    # diffusers slices the text and image tokens out of one concatenated context
    sliced = impl.diffusers_dit and bool(variant.image_tokens)
    children: list[Module | Repeated] = [
        _linear("q", impl, rows, dim, dim, x_dtype=x_dtype),
        _linear("k", impl, text_rows, dim, dim, x_dtype=act, strided_batch=sliced),
        _linear("v", impl, text_rows, dim, dim, x_dtype=act, strided_batch=sliced),
        _linear("o", impl, rows, dim, dim, x_dtype=qk),
        _rms_norm("norm_q", impl, rows, dim, eps=variant.eps),
        _rms_norm("norm_k", impl, text_rows, dim, eps=variant.eps),
    ]
    # q:[B, Lv, D] attends to the L text tokens
    ops = _attention_core(impl, rows, L, heads, head_dim)
    class_name = "WanCrossAttention" if variant.family == "wan2.2" else "WanT2VCrossAttention"
    if variant.image_tokens:
        class_name = "WanI2VCrossAttention"
        image_rows = B * variant.image_tokens
        children += [
            _linear("k_img", impl, image_rows, dim, dim, x_dtype=act, strided_batch=sliced),
            _linear("v_img", impl, image_rows, dim, dim, x_dtype=act, strided_batch=sliced),
            _rms_norm("norm_k_img", impl, image_rows, dim, eps=variant.eps),
        ]
        # the same q attends to the Li image tokens; the two outputs are summed before o
        ops += [
            *_attention_core(impl, rows, sympy.Integer(variant.image_tokens), heads, head_dim),
            add(rows * dim, dtype=qk),
        ]
    return Module(
        name="cross_attn",
        class_name=class_name,
        stage=STAGE,
        params={"dim": dim, "num_heads": heads, "window_size": list(variant.window_size), "qk_norm": True},
        children=tuple(children),
        ops=tuple(ops),
    )


def _modulate(impl: Implementation, rows: sympy.Expr, dim: int, time_rows: sympy.Expr) -> list[OpCall]:
    """``norm(x)·(1 + scale) + shift`` in fp32, then cast to the stream dtype (diffusers' ``type_as``);
    ``time_rows`` rows of shift and scale (per sample, or per token)."""
    numel = rows * dim
    per_sample = time_rows * dim
    return [
        add(per_sample, dtype=FP32, other_numel=1),  # 1 + scale
        mul(numel, dtype=FP32, other_numel=per_sample),
        add(numel, dtype=FP32, other_numel=per_sample),
        *cast(numel, FP32, impl.stream_dtype),
    ]


def _gated_residual(impl: Implementation, rows: sympy.Expr, dim: int, time_rows: sympy.Expr) -> list[OpCall]:
    """``x + y·gate`` in fp32 (y from a Linear at the matmul dtype, gate fp32 on ``time_rows`` rows),
    at the stream dtype."""
    numel = rows * dim
    stream = impl.stream_dtype
    return [
        *cast(numel, stream, FP32),
        mul(numel, dtype=impl.matmul_dtype, other_numel=time_rows * dim, other_dtype=FP32, out_dtype=FP32),
        add(numel, dtype=FP32),
        *cast(numel, FP32, stream),
    ]


def _diffusers_modulate(rows: sympy.Expr, dim: int, time_rows: sympy.Expr) -> list[OpCall]:
    """``(norm(x.float()) · (1 + scale) + shift).type_as(x)`` after the norm: fp32, then to bf16.

    The ``x.float()`` before the norm is the caller's (:func:`_diffusers_block_ops`); ``1 + scale``
    adds a Python number, so it reads only ``scale`` (``time_rows`` rows: per sample, or per token).
    """
    numel = rows * dim
    per_sample = time_rows * dim
    return [
        add(per_sample, dtype=FP32, other_numel=0),  # 1 + scale:[B, 1, D] (per token: [B, Lv, D])
        mul(numel, dtype=FP32, other_numel=per_sample),
        add(numel, dtype=FP32, other_numel=per_sample),
        to_copy(numel, in_dtype=FP32, out_dtype=BF16),
    ]


def _diffusers_block_ops(
    impl: Implementation, rows: sympy.Expr, dim: int, time_rows: sympy.Expr
) -> list[OpCall]:
    """The ops ``WanTransformerBlock.forward`` runs itself, in order (diffusers ``transformer_wan.py``).

    The stream is bf16; ``temb`` (``[B, 6, D]`` bf16, per token ``[B, Lv, 6, D]``) is upcast and
    added to the fp32 ``scale_shift_table``; each norm's input is upcast (``.float()``) and its output
    cast back here.
    """
    numel = rows * dim
    per_sample = time_rows * dim
    chunks = time_rows * MODULATION_CHUNKS * dim
    gated = [
        *cast(numel, BF16, FP32),  # hidden_states.float()
        # attn_output:[B, Lv, D] bf16 · gate:[B, 1, D] fp32 → fp32
        mul(numel, dtype=BF16, other_numel=per_sample, other_dtype=FP32, out_dtype=FP32),
        add(numel, dtype=FP32),
        to_copy(numel, in_dtype=FP32, out_dtype=BF16),
    ]
    modulation = with_parameters(
        # scale_shift_table:[1, 6, D] + temb.float():[B, 6, D]
        add(chunks, dtype=FP32, other_numel=MODULATION_CHUNKS * dim),
        MODULATION_CHUNKS * dim,
        dtype=impl.weights(WeightRole.MODULATION),
    )
    return [
        to_copy(chunks, in_dtype=BF16, out_dtype=FP32),
        modulation,
        to_copy(numel, in_dtype=BF16, out_dtype=FP32),  # norm1(hidden_states.float())
        *_diffusers_modulate(rows, dim, time_rows),
        *gated,  # + attn1 · gate_msa
        to_copy(numel, in_dtype=BF16, out_dtype=FP32),  # norm2(hidden_states.float())
        to_copy(numel, in_dtype=FP32, out_dtype=BF16),  # .type_as(hidden_states)
        add(numel, dtype=BF16),  # + attn2
        to_copy(numel, in_dtype=BF16, out_dtype=FP32),  # norm3(hidden_states.float())
        *_diffusers_modulate(rows, dim, time_rows),
        # hidden_states.float() + ff_output.float() · c_gate_msa
        to_copy(numel, in_dtype=BF16, out_dtype=FP32),
        to_copy(numel, in_dtype=BF16, out_dtype=FP32),
        mul(numel, dtype=FP32, other_numel=per_sample),
        add(numel, dtype=FP32),
        to_copy(numel, in_dtype=FP32, out_dtype=BF16),
    ]


def _block(variant: WanVariant, impl: Implementation) -> Module:
    """``WanAttentionBlock``: modulated self-attention, cross-attention, modulated FFN."""
    dim, ffn_dim = variant.dim, variant.ffn_dim
    rows = B * _tokens(variant)
    time_rows = _time_rows(variant, impl)
    stream, act = impl.stream_dtype, impl.matmul_dtype
    eps = variant.eps
    ffn = _container(
        "ffn",
        "Sequential",
        [
            _linear("0", impl, rows, dim, ffn_dim, x_dtype=stream),
            _activation("1", "GELU", gelu_tanh(rows * ffn_dim, dtype=act), approximate="tanh"),
            _linear("2", impl, rows, ffn_dim, dim, x_dtype=act),
        ],
    )
    # diffusers casts to and from fp32 around its norms in the block's own forward
    norm_in, modulated_out = (FP32, FP32) if impl.diffusers_dit else (stream, FP32)
    affine_out = FP32 if impl.diffusers_dit else stream
    children: list[Module | Repeated] = [
        _layer_norm(
            "norm1", impl, rows, dim, affine=False, in_dtype=norm_in, out_dtype=modulated_out, eps=eps
        ),
        _self_attention(variant, impl, rows, stream),
        _layer_norm("norm3", impl, rows, dim, affine=True, in_dtype=norm_in, out_dtype=affine_out, eps=eps),
        _cross_attention(variant, impl, rows, stream),
        _layer_norm(
            "norm2", impl, rows, dim, affine=False, in_dtype=norm_in, out_dtype=modulated_out, eps=eps
        ),
        ffn,
    ]
    if impl.diffusers_dit:
        ops = _diffusers_block_ops(impl, rows, dim, time_rows)
    else:
        modulation = with_parameters(
            # modulation:[1, 6, D] + e0:[B, 6, D] (per token: [B, Lv, 6, D])
            add(time_rows * MODULATION_CHUNKS * dim, dtype=FP32, other_numel=MODULATION_CHUNKS * dim),
            MODULATION_CHUNKS * dim,
            dtype=impl.weights(WeightRole.MODULATION),
        )
        ops = [
            modulation,
            *_modulate(impl, rows, dim, time_rows),  # norm1 → self_attn
            *_gated_residual(impl, rows, dim, time_rows),  # x + self_attn·gate
            add(rows * dim, dtype=stream, other_dtype=act),  # x + cross_attn
            *_modulate(impl, rows, dim, time_rows),  # norm2 → ffn
            *_gated_residual(impl, rows, dim, time_rows),  # x + ffn·gate
        ]
    return Module(
        name="blocks",
        class_name="WanAttentionBlock",
        stage=STAGE,
        params={
            "cross_attn_type": "t2v_cross_attn" if not variant.image_tokens else "i2v_cross_attn",
            "dim": dim,
            "ffn_dim": ffn_dim,
            "num_heads": variant.num_heads,
            "window_size": list(variant.window_size),
            "qk_norm": variant.qk_norm,
            "cross_attn_norm": variant.cross_attn_norm,
            "eps": eps,
        },
        children=tuple(children),
        ops=tuple(ops),
    )


def _head(variant: WanVariant, impl: Implementation) -> Module:
    """``Head``: modulated LayerNorm, then Linear(D → out_dim·∏patch) in the fp32 region."""
    dim = variant.dim
    rows = B * _tokens(variant)
    time_rows = _time_rows(variant, impl)
    out_features = variant.out_dim * variant.patch_size[0] * variant.patch_size[1] * variant.patch_size[2]
    modulation = with_parameters(
        # modulation:[1, 2, D] + e:[B, 1, D] (per token: [B, Lv, 2, D])
        add(time_rows * HEAD_MODULATION_CHUNKS * dim, dtype=FP32, other_numel=HEAD_MODULATION_CHUNKS * dim),
        HEAD_MODULATION_CHUNKS * dim,
        dtype=impl.weights(WeightRole.MODULATION),
    )
    stream = impl.stream_dtype
    norm_in = FP32 if impl.diffusers_dit else stream
    norm = _layer_norm(
        "norm", impl, rows, dim, affine=False, in_dtype=norm_in, out_dtype=FP32, eps=variant.eps
    )
    linear = _linear("head", impl, rows, dim, out_features, x_dtype=stream, fp32_region=True)
    ops = (modulation, *_modulate(impl, rows, dim, time_rows))
    if impl.diffusers_dit:
        # the modulation arithmetic runs in WanTransformer3DModel.forward (_diffusers_root_ops)
        ops = (
            with_parameters(
                parameter_held(dtype=impl.weights(WeightRole.MODULATION)),
                HEAD_MODULATION_CHUNKS * dim,
                dtype=impl.weights(WeightRole.MODULATION),
            ),
        )
    return Module(
        name="head",
        class_name="Head",
        stage=STAGE,
        params={
            "dim": dim,
            "out_dim": variant.out_dim,
            "patch_size": list(variant.patch_size),
            "eps": variant.eps,
        },
        children=(norm, linear),
        ops=ops,
    )


def _image_embedding(variant: WanVariant, impl: Implementation) -> Module:
    """``MLPProj``: LayerNorm, Linear, GELU, Linear, LayerNorm on the CLIP image tokens.

    FLF2V views its two images' tokens as one sequence of 514 and adds a learned position embedding.
    """
    image_dim = variant.image_dim or 0
    dim = variant.dim
    rows = B * variant.image_tokens
    act, stream = impl.matmul_dtype, impl.stream_dtype
    proj = _container(
        "proj",
        "Sequential",
        [
            _layer_norm("0", impl, rows, image_dim, affine=True, in_dtype=act, out_dtype=stream, eps=1e-5),
            _linear("1", impl, rows, image_dim, image_dim, x_dtype=stream),
            _activation("2", "GELU", gelu(rows * image_dim, dtype=act), approximate="none"),
            _linear("3", impl, rows, image_dim, dim, x_dtype=act),
            _layer_norm("4", impl, rows, dim, affine=True, in_dtype=act, out_dtype=stream, eps=1e-5),
        ],
    )
    ops: tuple[OpCall, ...] = ()
    if variant.num_images > 1:
        # clip tokens:[B, 514, 1280] + emb_pos:[1, 514, 1280]
        position = add(rows * image_dim, dtype=act, other_numel=variant.image_tokens * image_dim)
        ops = (
            with_parameters(
                position, variant.image_tokens * image_dim, dtype=impl.weights(WeightRole.POSITION)
            ),
        )
    return Module(
        name="img_emb",
        class_name="MLPProj",
        stage=STAGE,
        params={"in_dim": image_dim, "out_dim": dim, "flf_pos_emb": variant.num_images > 1},
        children=(proj,),
        ops=ops,
    )


def _time_and_text_embeddings(variant: WanVariant, impl: Implementation) -> list[Module | Repeated]:
    """``text_embedding``, ``time_embedding`` and ``time_projection`` (three ``nn.Sequential``)."""
    dim, act = variant.dim, impl.matmul_dtype
    text_rows = B * L
    time_rows = _time_rows(variant, impl)
    time = WeightRole.TIME_EMBEDDING
    time_dtype = impl.linear_dtype(time, fp32_region=True)
    projection_dtype = impl.linear_dtype(WeightRole.MATMUL, fp32_region=True)
    return [
        _container(
            "text_embedding",
            "Sequential",
            [
                _linear("0", impl, text_rows, variant.text_dim, dim, x_dtype=act),
                _activation("1", "GELU", gelu_tanh(text_rows * dim, dtype=act), approximate="tanh"),
                _linear("2", impl, text_rows, dim, dim, x_dtype=act),
            ],
        ),
        _container(
            "time_embedding",
            "Sequential",
            [
                _linear(
                    "0",
                    impl,
                    time_rows,
                    variant.freq_dim,
                    dim,
                    x_dtype=time_dtype,
                    role=time,
                    fp32_region=True,
                ),
                _activation("1", "SiLU", silu(time_rows * dim, dtype=time_dtype)),
                _linear("2", impl, time_rows, dim, dim, x_dtype=time_dtype, role=time, fp32_region=True),
            ],
        ),
        _container(
            "time_projection",
            "Sequential",
            [
                _activation("0", "SiLU", silu(time_rows * dim, dtype=projection_dtype)),
                _linear(
                    "1",
                    impl,
                    time_rows,
                    dim,
                    MODULATION_CHUNKS * dim,
                    x_dtype=projection_dtype,
                    fp32_region=True,
                ),
            ],
        ),
    ]


def _patch_embedding(variant: WanVariant, impl: Implementation) -> Module:
    """``Conv3d(in_dim → D, kernel = stride = patch)`` on the latent video."""
    pt, ph, pw = variant.patch_size
    grid_in = _latent_grid(variant)
    grid_out = (grid_in[0] / pt, grid_in[1] / ph, grid_in[2] / pw)
    compute = impl.linear_dtype(WeightRole.MATMUL)
    held = impl.weights(WeightRole.MATMUL)
    count = variant.in_dim * variant.dim * pt * ph * pw + variant.dim
    # x:[B, in_dim, T, h, w] ⋆ W:[D, in_dim, 1, 2, 2] → [B, D, T, h/2, w/2]
    conv = convolution(
        B,
        variant.in_dim,
        variant.dim,
        kernel=variant.patch_size,
        out_spatial=grid_out,
        in_spatial=grid_in,
        bias=True,
        dtype=compute,
    )
    latent_numel = B * variant.in_dim * grid_in[0] * grid_in[1] * grid_in[2]
    ops = [
        # the latent is fp32 in the official sampling loop, at the matmul dtype in diffusers
        *cast(latent_numel, impl.stream_dtype, compute),
        *cast(sympy.Integer(count), held, compute),
        with_parameters(conv, count, dtype=held),
    ]
    return _module(
        "patch_embedding",
        "Conv3d",
        ops,
        in_channels=variant.in_dim,
        out_channels=variant.dim,
        kernel_size=list(variant.patch_size),
        stride=list(variant.patch_size),
    )


def _rope_split(head_dim: int) -> tuple[int, int, int]:
    """Channels of a head given to the frame, height and width positions (diffusers ``WanRotaryPosEmbed``)."""
    spatial = 2 * (head_dim // 6)
    return head_dim - 2 * spatial, spatial, spatial


def _diffusers_root_ops(variant: WanVariant, impl: Implementation) -> list[OpCall]:
    """The ops ``WanTransformer3DModel.forward`` (and its unmapped children) runs itself, in order.

    Rotary tables (``WanRotaryPosEmbed``), the ``.contiguous()`` of the patch tokens, the sinusoidal
    timestep embedding (``Timesteps``), ``temb.type_as``, the image-and-text ``concat``, the head's
    modulation around ``norm_out``, and the unpatchify copy (diffusers ``transformer_wan.py``). With
    a timestep per token (TI2V-5B) the timestep rows are ``B·Lv`` instead of ``B``.
    """
    dim, head_dim = variant.dim, variant.head_dim
    tokens = _tokens(variant)
    rows = B * tokens
    time_rows = _time_rows(variant, impl)
    numel = rows * dim
    pt, ph, pw = variant.patch_size
    latent = _latent_grid(variant)
    grid = (latent[0] / pt, latent[1] / ph, latent[2] / pw)
    split = _rope_split(head_dim)
    # cat of the frame/height/width tables expanded to [T, h, w, c_i] → [T, h, w, head_dim], fp32
    table = cat(
        [tokens * channels for channels in split],
        dtype=FP32,
        stored_numels=[size * channels for size, channels in zip(grid, split, strict=True)],
    )
    half = variant.freq_dim // 2
    sinusoid = time_rows * half
    head_out = variant.out_dim * pt * ph * pw
    ops = [
        table,  # cos
        table,  # sin
        # patch tokens .contiguous(): a copy unless there is one token ([B, D, 1]ᵀ is contiguous)
        clone(_more_than_one(tokens) * numel, dtype=BF16),
        # exponent = −ln(10⁴)·arange(half) / half; emb = timestep[:, None].float() · exp(exponent)
        arange(half, dtype=FP32),
        mul(half, dtype=FP32, other_numel=0),
        div(half, dtype=FP32),
        exp(half, dtype=FP32),
        to_copy(time_rows, in_dtype=INT64, out_dtype=FP32),
        mul_broadcast(
            sinusoid,
            self_numel=time_rows,
            self_dtype=FP32,
            other_numel=half,
            other_dtype=FP32,
            out_dtype=FP32,
        ),
        mul(sinusoid, dtype=FP32, other_numel=0),
        sin(sinusoid, dtype=FP32),
        cos(sinusoid, dtype=FP32),
        cat([sinusoid, sinusoid], dtype=FP32),
        cat([sinusoid, sinusoid], dtype=FP32),  # flip_sin_to_cos
        to_copy(time_rows * dim, in_dtype=FP32, out_dtype=BF16),  # temb.type_as(encoder_hidden_states)
    ]
    if variant.image_tokens:
        # concat([image tokens, text tokens]):[B, Li + L, D]
        ops.append(cat([B * variant.image_tokens * dim, B * L * dim], dtype=BF16))
    ops += [
        # scale_shift_table:[1, 2, D] fp32 + temb:[B, 1, D] bf16 → [B, 2, D] fp32 (per token: [B, Lv, 2, D])
        add_broadcast(
            time_rows * HEAD_MODULATION_CHUNKS * dim,
            self_numel=HEAD_MODULATION_CHUNKS * dim,
            self_dtype=FP32,
            other_numel=time_rows * dim,
            other_dtype=BF16,
            out_dtype=FP32,
        ),
        to_copy(numel, in_dtype=BF16, out_dtype=FP32),  # norm_out(hidden_states.float())
        *_diffusers_modulate(rows, dim, time_rows),
        # unpatchify: flattening the permuted [B, out, T, p_t, h, p_h, w, p_w] view copies it, unless
        # the latent is one patch wide (then every merged pair of dimensions is contiguous)
        clone(_more_than_one(grid[2]) * rows * head_out, dtype=BF16),
    ]
    return ops


@functools.cache
def declare_dit(variant: WanVariant, impl: Implementation) -> Module:
    """The whole ``WanModel`` of ``variant`` as ``impl`` runs it: one forward on ``B`` videos."""
    dim = variant.dim
    rows = B * _tokens(variant)
    head_out = variant.out_dim * variant.patch_size[0] * variant.patch_size[1] * variant.patch_size[2]
    head_dtype = impl.linear_dtype(WeightRole.MATMUL, fp32_region=True)
    children: list[Module | Repeated] = [
        _patch_embedding(variant, impl),
        *_time_and_text_embeddings(variant, impl),
        Repeated(template=_block(variant, impl), count=variant.num_layers, name="blocks"),
        _head(variant, impl),
    ]
    if impl.diffusers_dit:
        ops = _diffusers_root_ops(variant, impl)
    else:
        ops = [
            # sinusoidal timestep embedding:[B, freq_dim] (per token: [B·Lv, freq_dim]), one product each
            mul(_time_rows(variant, impl) * variant.freq_dim, dtype=FP32, other_numel=variant.freq_dim // 2),
            # unpatchify: einsum 'fhwpqrc->cfphqwr' copies the head output into the latent layout
            to_copy(rows * head_out, in_dtype=head_dtype, out_dtype=head_dtype),
        ]
    if variant.image_tokens:
        children.append(_image_embedding(variant, impl))
    if variant.image_tokens and not impl.diffusers_dit:
        # context = cat([image tokens, text tokens]):[B, Li + L, D]
        ops.append(
            to_copy(
                B * (variant.image_tokens + L) * dim, in_dtype=impl.matmul_dtype, out_dtype=impl.matmul_dtype
            )
        )
    return Module(
        name="diffusion",
        class_name="WanModel",
        stage=STAGE,
        params={
            "model_type": variant.model_type,
            "patch_size": list(variant.patch_size),
            "text_len": variant.text_len,
            "in_dim": variant.in_dim,
            "dim": dim,
            "ffn_dim": variant.ffn_dim,
            "freq_dim": variant.freq_dim,
            "text_dim": variant.text_dim,
            "out_dim": variant.out_dim,
            "num_heads": variant.num_heads,
            "num_layers": variant.num_layers,
            "window_size": list(variant.window_size),
            "qk_norm": variant.qk_norm,
            "cross_attn_norm": variant.cross_attn_norm,
            "eps": variant.eps,
        },
        children=tuple(children),
        ops=tuple(ops),
    )
