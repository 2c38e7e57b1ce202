"""The Wan-VAE (``WanVAE_``), declared module by module with its real chunked execution.

Module names and classes are those of the official implementation (``wan/modules/vae.py``), so ids
read ``vae.encoder.downsamples.5.time_conv`` or ``vae.decoder.upsamples.4.residual.2``. One root
declares the whole VAE: ``encoder`` and ``conv1`` (the quant conv) run once per encode,
``conv2`` (the post-quant conv) and ``decoder`` once per decode. :func:`declare_vae` takes how many
encodes and decodes one call of the root makes, so a pipeline states "decode once" (T2V) or
"encode once and decode once" (I2V) and counts the VAE's parameters once either way: a part that
does not run has zero calls, no work, and its weights still count (both implementations load the
whole VAE).

The real code runs the encoder and decoder chunk by chunk over time:

- encode: ``T = (F − 1)//4 + 1`` chunks, the first frame alone, then 4 frames per chunk;
- decode: ``T`` chunks of one latent frame each;
- every causal 3-D convolution pads the front of a chunk with the last ``CACHE_T`` frames the
  previous chunk gave it (zeros in the first chunk), so a chunk of ``t`` frames yields ``t`` frames;
- the time convolutions of the resample blocks are skipped in the first chunk (encode: its frame is
  only cached; decode: the cache is marked ``'Rep'``), and later chunks halve (encode) or double
  (decode) their frames there.

A module's ops are its first chunk's ops plus ``T − 1`` times a later chunk's (:class:`ChunkFrames`
gives the frames each sees), so every metric is a closed form in ``F``, ``H``, ``W`` and ``B``: no
loop over chunks at evaluation time. One call of a module in the tree is one whole chunked pass
(``T`` calls of the real ``forward``).

FLOPs follow ``FlopCounterMode`` (every output position with the full kernel, cache and zero padding
included). The VAE runs in fp32 in both implementations; each module declares the eager aten ops the
real code runs (diffusers' ``models/autoencoders/autoencoder_kl_wan.py``, the official
``wan/modules/vae.py`` the same), so its bytes are the sum over those ops' reads and writes and equal
the eager byte counter id by id (docs/vae.md, "Exact and approximate").
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Final

import sympy
from attrs import evolve, field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.dtypes import DType
from llm_perf_opt.symbolic.module import Module, Repeated
from llm_perf_opt.symbolic.primitives import (
    OpCall,
    Size,
    add,
    cat,
    clamp,
    clamp_min,
    clone,
    constant_pad,
    conv_output_size,
    convolution,
    div,
    exp,
    linalg_vector_norm,
    mul,
    scaled_dot_product_attention,
    silu,
    sub,
    upsample_nearest_exact2d,
    with_parameters,
    zeros_like,
)
from llm_perf_opt.symbolic.symbols import B
from llm_perf_opt.wan2_1.geometry import (
    VAE_SPATIAL_STRIDE,
    VAE_TEMPORAL_STRIDE,
    latent_frames,
    latent_height,
    latent_width,
)
from llm_perf_opt.wan2_1.implementation import Implementation

__all__ = [
    "CACHE_T",
    "WAN_VAE",
    "ChunkFrames",
    "WanVAEConfig",
    "declare_vae",
    "decoded_frames",
    "later_chunks",
]

STAGE: Final = "vae"
CACHE_T: Final = 2
"""Frames of its input each causal 3×3×3 convolution keeps for the next chunk (official ``CACHE_T``)."""
VIDEO_CHANNELS: Final = 3
"""RGB: the encoder's input and the decoder's output channels."""


def _positive(_instance: object, attribute: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        name = getattr(attribute, "name", "value")
        raise LlmPerfOptError(f"{name}: must be an integer ≥ 1, got {value!r}")


@frozen(kw_only=True)
class WanVAEConfig:
    """The constructor arguments of the official ``WanVAE_`` (``_video_vae`` config).

    Attributes:
        dim: base channels (96).
        z_dim: latent channels (16); the encoder outputs ``2·z_dim`` (mean and log-variance).
        dim_mult: channel multipliers per level.
        num_res_blocks: residual blocks per encoder level (the decoder has one more).
        attn_scales: spatial scales with an attention block after each residual block (none in Wan2.1).
        temperal_downsample: per encoder level transition, whether it also halves time (the decoder
            upsamples in reverse order); the official spelling.
        dropout: dropout probability (0: the identity in eval).
    """

    dim: int = field(default=96, validator=_positive)
    z_dim: int = field(default=16, validator=_positive)
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = field(default=2, validator=_positive)
    attn_scales: tuple[float, ...] = ()
    temperal_downsample: tuple[bool, ...] = (False, True, True)
    dropout: float = 0.0

    def params(self) -> dict[str, object]:
        """The JSON-able constructor parameters."""
        return {
            "dim": self.dim,
            "z_dim": self.z_dim,
            "dim_mult": list(self.dim_mult),
            "num_res_blocks": self.num_res_blocks,
            "attn_scales": list(self.attn_scales),
            "temperal_downsample": list(self.temperal_downsample),
            "dropout": self.dropout,
        }


WAN_VAE: Final = WanVAEConfig()
"""The Wan2.1 VAE: dim 96, z_dim 16, dim_mult (1, 2, 4, 4), 2 residual blocks, no attention scales,
temporal downsampling on the second and third level transitions."""


@frozen
class ChunkFrames:
    """The frames one module receives per chunk: in the first chunk and in each later chunk.

    ``first`` is ``None`` when the first chunk skips the module (the resample time convolutions);
    ``later`` is 0 for a module called once on the whole latent (the quant convs), whose ``first`` is
    then the latent's frame count.
    """

    first: Size | None
    later: int


def later_chunks() -> sympy.Expr:
    """Chunks after the first, in one encode or decode: ``T − 1 = (F − 1)//4``."""
    return latent_frames() - 1


@frozen(eq=False)
class _Run:
    """How one chunked pass runs: its dtype and the videos each real call carries."""

    dtype: DType
    samples: sympy.Expr


def _plane(scale: int) -> tuple[sympy.Expr, sympy.Expr]:
    """Height and width at ``scale`` times the latent size (8: the video's pixels, 1: the latent)."""
    return latent_height() * scale, latent_width() * scale


def _triple(value: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(value, int):
        return value, value, value
    t, h, w = value
    return t, h, w


def _times(call: OpCall, count: sympy.Expr) -> OpCall:
    """``call`` repeated ``count`` times: its work scales, the weights it owns do not."""
    return evolve(call, cost=call.cost.scaled(count))


def _chunked(frames: ChunkFrames, make: Callable[[Size, bool], list[OpCall]]) -> list[OpCall]:
    """``make(t, later)`` for the first chunk, plus ``T − 1`` times for a later chunk."""
    ops = [] if frames.first is None else make(frames.first, False)
    if frames.later:
        ops += [_times(op, later_chunks()) for op in make(frames.later, True)]
    return ops


def _phased(frames: ChunkFrames, make: Callable[[Size, int], list[OpCall]]) -> list[OpCall]:
    """``make(t, phase)`` for each chunk phase a module runs in: phase 0 the first chunk, phase 1 the
    second (``Min(n, 1)`` calls, ``n = T − 1``), phase 2 each chunk after it (``Max(n − 1, 0)``).

    A causal conv's cache holds the first chunk's frames in the second chunk and ``CACHE_T`` frames
    after it, so some ops differ between phases 1 and 2; ``Min``/``Max`` keep the total a closed form.
    A module the first chunk skips (``frames.first`` is ``None``) runs from phase 1.
    """
    n = later_chunks()
    ops = [] if frames.first is None else make(frames.first, 0)
    if frames.later:
        ops += [_times(op, sympy.Min(n, 1)) for op in make(frames.later, 1)]
        ops += [_times(op, sympy.Max(n - 1, 0)) for op in make(frames.later, 2)]
    return ops


def _batch_copies(run: _Run) -> sympy.Expr:
    """1 where a pass carries more than one video, else 0: ``x.permute(0, 2, 1, 3, 4).reshape(b·t, …)``
    copies a ``[b, c, t, h, w]`` tensor only when both ``b`` and ``t`` exceed 1 (else it is a view)."""
    return sympy.Min(run.samples - 1, 1)


def _frames_folded(run: _Run, channels: int, t: Size, height: sympy.Expr, width: sympy.Expr) -> list[OpCall]:
    """``x.permute(0, 2, 1, 3, 4).reshape(b·t, c, h, w)`` of a ``[b, c, t, h, w]`` tensor: a copy
    (``aten.clone``) for ``b > 1`` and ``t > 1``, a view otherwise (diffusers' ``WanResample`` and
    ``WanAttentionBlock``; the official ``rearrange`` likewise)."""
    if t == 1:
        return []
    return [_times(clone(run.samples * channels * t * height * width, dtype=run.dtype), _batch_copies(run))]


def _made_contiguous(
    run: _Run, channels: int, t: Size, height: sympy.Expr, width: sympy.Expr
) -> list[OpCall]:
    """The copy a CUDA nearest-upsampling kernel makes of a strided input (``input_.contiguous()`` in
    ``upsample_nearest2d_out_cuda_template``, ``aten/src/ATen/native/cuda/UpSampleNearest2d.cu``):
    the frames folded into the batch are a strided view exactly where :func:`_frames_folded` does not
    copy, for one video and ``t > 1`` frames."""
    if t == 1:
        return []
    numel = run.samples * channels * t * height * width
    return [_times(clone(numel, dtype=run.dtype), 1 - _batch_copies(run))]


def _owning(ops: list[OpCall], primitive: str, count: Size, dtype: DType) -> list[OpCall]:
    """The ops with the module's ``count`` parameters put on its first ``primitive`` op."""
    index = next(i for i, op in enumerate(ops) if op.primitive == primitive)
    return [*ops[:index], with_parameters(ops[index], count, dtype=dtype), *ops[index + 1 :]]


def _copy(numel: Size, run: _Run) -> OpCall:
    """A layout copy at the VAE's dtype (``clone``, ``.contiguous()``, ``stack``)."""
    return clone(numel, dtype=run.dtype)


def _cat(numel: Size, run: _Run) -> OpCall:
    """``torch.cat`` at the VAE's dtype into a tensor of ``numel`` elements (its inputs read once)."""
    return cat([numel], dtype=run.dtype)


def _same_or_output(size: sympy.Expr, kernel: int, padding: int, stride: int) -> sympy.Expr:
    """A convolution's output size along one axis of a padded plane: ``size`` itself for a stride-1
    kernel of ``2·padding + 1`` (every spatial kernel here), written without ``floor`` so formulas stay
    readable; else :func:`conv_output_size`."""
    if stride == 1 and kernel == 2 * padding + 1:
        return size
    return conv_output_size(size + 2 * padding, kernel, stride=stride)


def _module(name: str, class_name: str, ops: list[OpCall], **params: object) -> Module:
    return Module(name=name, class_name=class_name, stage=STAGE, params=params, ops=tuple(ops))


def _sequential(name: str, children: list[Module | Repeated]) -> Module:
    return Module(name=name, class_name="Sequential", stage=STAGE, children=tuple(children))


# ─── leaves ─────────────────────────────────────────────────────────────────────────────────────


def _causal_conv3d(
    name: str,
    run: _Run,
    c_in: int,
    c_out: int,
    *,
    kernel: int | tuple[int, int, int],
    frames: ChunkFrames,
    scale: int,
    padding: int | tuple[int, int, int] = 0,
    stride: int | tuple[int, int, int] = 1,
) -> Module:
    """``CausalConv3d``: cache (or zeros) in front in time, zeros around in space, then ``Conv3d``.

    A time padding ``pt`` becomes ``2·pt`` frames in front: the previous chunk's cached frames and
    zeros together (all zeros in the first chunk), so ``t`` frames in give ``t`` frames out. Eager ops
    per chunk (``WanCausalConv3d.forward`` in diffusers' ``autoencoder_kl_wan.py``, ``CausalConv3d``
    in the official ``wan/modules/vae.py``): with a cache, ``torch.cat([cache_x, x], dim=2)``; then
    ``F.pad`` (``aten.constant_pad_nd``) reading what it gets and writing the padded tensor, with a
    positive pad as ``fill_`` of the padded tensor and ``copy_`` of the input into it (the interior
    written twice), with none (a cached ``upsample3d`` time conv, the 1×1×1 convs) as a ``clone``;
    then the convolution. The cache holds the first chunk's frames
    (``min(first, CACHE_T)``) in the second chunk and ``CACHE_T`` frames after it; a module the
    first chunk skips (the ``upsample3d`` time conv) has no cache in its first call.
    """
    kt, kh, kw = _triple(kernel)
    pt, ph, pw = _triple(padding)
    st, sh, sw = _triple(stride)
    height, width = _plane(scale)
    b = run.samples
    plane = b * c_in * height * width
    padded_plane = b * c_in * (height + 2 * ph) * (width + 2 * pw)

    def cached(phase: int) -> Size:
        if not pt or phase == 0 or (phase == 1 and frames.first is None):
            return 0
        if phase == 1:
            return sympy.Min(frames.first, CACHE_T)
        return CACHE_T

    def copies(t: Size, phase: int) -> list[OpCall]:
        # cat([cache_x:[b, c_in, c, h, w], x:[b, c_in, t, h, w]], 2), then F.pad → [b, c_in, t + 2·pt, h', w']
        held = cached(phase)
        ops = [_cat(plane * (held + t), run)] if held else []
        fills = bool(2 * pt - held > 0) or ph > 0 or pw > 0  # the time pad left after the cache
        pad = constant_pad(plane * (held + t), padded_plane * (t + 2 * pt), dtype=run.dtype, fills=fills)
        return [*ops, *pad]

    def chunk(t: Size, later: bool) -> list[OpCall]:
        t_in = t + 2 * pt
        in_spatial = (t_in, height + 2 * ph, width + 2 * pw)
        out_spatial = (
            conv_output_size(t_in, kt, stride=st),
            _same_or_output(height, kh, ph, sh),
            _same_or_output(width, kw, pw, sw),
        )
        # x ⋆ W:[c_out, c_in, kt, kh, kw] (+ bias) → [b, c_out, t_out, h_out, w_out]
        return [
            convolution(
                b,
                c_in,
                c_out,
                kernel=(kt, kh, kw),
                out_spatial=out_spatial,
                in_spatial=in_spatial,
                bias=True,
                dtype=run.dtype,
            )
        ]

    pads = _phased(frames, copies) if pt else _chunked(frames, lambda t, later: copies(t, 0))
    ops = [*pads, *_chunked(frames, chunk)]
    count = c_out * c_in * kt * kh * kw + c_out
    return _module(
        name,
        "CausalConv3d",
        _owning(ops, "convolution", count, run.dtype),
        in_channels=c_in,
        out_channels=c_out,
        kernel_size=[kt, kh, kw],
        stride=[st, sh, sw],
        padding=[pt, ph, pw],
    )


def _conv2d(
    name: str,
    run: _Run,
    c_in: int,
    c_out: int,
    *,
    kernel: int,
    frames: ChunkFrames,
    in_size: tuple[sympy.Expr, sympy.Expr],
    out_size: tuple[sympy.Expr, sympy.Expr],
    stride: int = 1,
    padding: int = 0,
) -> Module:
    """``nn.Conv2d`` on every frame of a chunk (frames folded into the batch).

    ``in_size`` is the plane as the op receives it (after any explicit padding), ``out_size`` the
    plane it gives (the padding inside the op included).
    """
    b = run.samples

    def chunk(t: Size, later: bool) -> list[OpCall]:
        # x:[b·t, c_in, h, w] ⋆ W:[c_out, c_in, k, k] (+ bias) → [b·t, c_out, h_out, w_out]
        return [
            convolution(
                b * t,
                c_in,
                c_out,
                kernel=(kernel, kernel),
                out_spatial=out_size,
                in_spatial=in_size,
                bias=True,
                dtype=run.dtype,
            )
        ]

    count = c_out * c_in * kernel * kernel + c_out
    return _module(
        name,
        "Conv2d",
        _owning(_chunked(frames, chunk), "convolution", count, run.dtype),
        in_channels=c_in,
        out_channels=c_out,
        kernel_size=[kernel, kernel],
        stride=[stride, stride],
        padding=[padding, padding],
    )


def _rms_norm(name: str, run: _Run, dim: int, frames: ChunkFrames, scale: int, *, images: bool) -> Module:
    """``RMS_norm``: ``F.normalize(x, dim=channels)·√dim·γ + 0.0`` at every position.

    Eager ops (``WanRMS_norm.forward``, diffusers ``autoencoder_kl_wan.py``; the official ``RMS_norm``
    is the same expression): ``F.normalize`` is ``x.norm(2, 1, keepdim=True)``
    (``aten.linalg_vector_norm``, one value per position), ``.clamp_min(eps)``, ``.expand_as(x)`` (a
    view) and ``x / norm`` (the broadcast norm read at the elements it stores); then ``·√dim`` (a
    Python float), ``·γ`` (``[dim, 1, 1(, 1)]``) and ``+ 0.0`` (the float bias), each a new tensor.
    A CUDA build runs the same ops (``F.normalize`` has no fused kernel). The ``.to(x.dtype)`` after
    the norm is a no-op in fp32.
    """
    height, width = _plane(scale)
    b = run.samples

    def chunk(t: Size, later: bool) -> list[OpCall]:
        rows = b * t * height * width
        numel = rows * dim
        return [
            linalg_vector_norm(rows, dim, dtype=run.dtype),  # ‖x‖₂ over the channels:[b, 1, t, h, w]
            clamp_min(rows, dtype=run.dtype),
            div(numel, dtype=run.dtype, other_numel=rows),  # x / norm.expand_as(x)
            mul(numel, dtype=run.dtype, other_numel=0),  # ·√dim, a Python float
            mul(numel, dtype=run.dtype, other_numel=dim),  # ·γ:[dim, 1, 1(, 1)]
            add(numel, dtype=run.dtype, other_numel=0),  # + bias, the Python float 0.0
        ]

    return _module(
        name,
        "RMS_norm",
        _owning(_chunked(frames, chunk), "mul", dim, run.dtype),
        dim=dim,
        channel_first=True,
        images=images,
        bias=False,
    )


def _silu(name: str, run: _Run, channels: int, frames: ChunkFrames, scale: int) -> Module:
    height, width = _plane(scale)

    def chunk(t: Size, later: bool) -> list[OpCall]:
        return [silu(run.samples * channels * t * height * width, dtype=run.dtype)]

    return _module(name, "SiLU", _chunked(frames, chunk))


def _cache_update(run: _Run, channels: int, frames: ChunkFrames, scale: int) -> list[OpCall]:
    """What the caller of a cached causal conv does with the conv's input for the next chunk.

    ``cache_x = x[:, :, -CACHE_T:].clone()``; a later chunk shorter than ``CACHE_T`` frames prepends
    the previous cache's last frame (``cat``).
    """
    height, width = _plane(scale)
    plane = run.samples * channels * height * width

    def chunk(t: Size, later: bool) -> list[OpCall]:
        ops = [_copy(plane * min(t, CACHE_T), run)]
        if later and t < CACHE_T:
            ops.append(_cat(plane * (1 + t), run))
        return ops

    return _chunked(frames, chunk)


# ─── blocks ─────────────────────────────────────────────────────────────────────────────────────


def _residual_block(
    name: str, run: _Run, in_dim: int, out_dim: int, frames: ChunkFrames, scale: int
) -> Module:
    """``ResidualBlock``: RMS norm, SiLU, causal 3×3×3 conv, twice; a 1×1×1 conv shortcut if the
    channels change (else the identity, which runs no op and has no id). ``residual.5`` is
    ``Dropout(0)``, the identity in eval: no op, no id.
    """
    height, width = _plane(scale)
    residual = _sequential(
        "residual",
        [
            _rms_norm("0", run, in_dim, frames, scale, images=False),
            _silu("1", run, in_dim, frames, scale),
            _causal_conv3d("2", run, in_dim, out_dim, kernel=3, padding=1, frames=frames, scale=scale),
            _rms_norm("3", run, out_dim, frames, scale, images=False),
            _silu("4", run, out_dim, frames, scale),
            _causal_conv3d("6", run, out_dim, out_dim, kernel=3, padding=1, frames=frames, scale=scale),
        ],
    )
    children: list[Module | Repeated] = [residual]
    if in_dim != out_dim:
        children.append(
            _causal_conv3d("shortcut", run, in_dim, out_dim, kernel=1, frames=frames, scale=scale)
        )

    def residual_add(t: Size, later: bool) -> list[OpCall]:
        # x + h:[b, out_dim, t, h, w]
        return [add(run.samples * out_dim * t * height * width, dtype=run.dtype)]

    ops = [
        *_cache_update(run, in_dim, frames, scale),  # before residual.2
        *_cache_update(run, out_dim, frames, scale),  # before residual.6
        *_chunked(frames, residual_add),
    ]
    return Module(
        name=name,
        class_name="ResidualBlock",
        stage=STAGE,
        params={"in_dim": in_dim, "out_dim": out_dim, "dropout": 0.0},
        children=tuple(children),
        ops=tuple(ops),
    )


def _attention_block(name: str, run: _Run, dim: int, frames: ChunkFrames, scale: int) -> Module:
    """``AttentionBlock``: per frame, RMS norm, 1×1 conv to q, k, v, one head of ``dim`` channels
    over the ``h·w`` positions (fp32 SDPA), 1×1 conv, residual add.
    """
    height, width = _plane(scale)
    plane = (height, width)
    b = run.samples

    def chunk(t: Size, later: bool) -> list[OpCall]:
        positions = height * width
        return [
            *_frames_folded(run, dim, t, height, width),
            # qkv:[b·t, 1, 3·dim, h·w] → .permute(0, 1, 3, 2).contiguous()
            _copy(b * t * 3 * dim * positions, run),
            # q, k, v:[b·t, 1, h·w, dim]: one head of dim channels over the h·w positions of a frame
            scaled_dot_product_attention(b * t, 1, positions, positions, dim, dtype=run.dtype),
            # x + identity:[b, dim, t, h, w]
            add(b * dim * t * positions, dtype=run.dtype),
        ]

    children = [
        _rms_norm("norm", run, dim, frames, scale, images=True),
        _conv2d("to_qkv", run, dim, 3 * dim, kernel=1, frames=frames, in_size=plane, out_size=plane),
        _conv2d("proj", run, dim, dim, kernel=1, frames=frames, in_size=plane, out_size=plane),
    ]
    return Module(
        name=name,
        class_name="AttentionBlock",
        stage=STAGE,
        params={"dim": dim},
        children=tuple(children),
        ops=tuple(_chunked(frames, chunk)),
    )


def _downsample(name: str, run: _Run, dim: int, frames: ChunkFrames, scale: int, *, time: bool) -> Module:
    """``Resample`` in mode ``downsample2d``/``downsample3d``: ``ZeroPad2d((0, 1, 0, 1))`` and a 3×3
    stride-2 ``Conv2d`` per frame (H and W are multiples of 16, so each level's size is even and
    halves exactly), then in 3-D a (3, 1, 1) stride-(2, 1, 1) causal conv over the previous chunk's
    last frame and this chunk's frames; the first chunk only caches its frame.
    """
    b = run.samples
    height, width = _plane(scale)
    out_scale = scale // 2
    out_height, out_width = _plane(out_scale)

    def pad(t: Size, later: bool) -> list[OpCall]:
        # x:[b·t, dim, h, w] → [b·t, dim, h + 1, w + 1] (fill_ of the padded, copy_ of x into it)
        padded = b * t * dim * (height + 1) * (width + 1)
        return constant_pad(b * t * dim * height * width, padded, dtype=run.dtype)

    def fold(t: Size, later: bool) -> list[OpCall]:
        return _frames_folded(run, dim, t, height, width)

    resample = _sequential(
        "resample",
        [
            _module("0", "ZeroPad2d", _chunked(frames, pad), padding=[0, 1, 0, 1]),
            _conv2d(
                "1",
                run,
                dim,
                dim,
                kernel=3,
                stride=2,
                frames=frames,
                in_size=(height + 1, width + 1),
                out_size=(out_height, out_width),
            ),
        ],
    )
    children: list[Module | Repeated] = [resample]
    ops: list[OpCall] = _chunked(frames, fold)
    mode = "downsample2d"
    if time:
        mode = "downsample3d"
        out_plane = b * dim * out_height * out_width

        def cache(t: Size, later: bool) -> list[OpCall]:
            if not later:
                return [_copy(out_plane * t, run)]  # feat_cache = x.clone()
            return [
                _copy(out_plane, run),  # cache_x = x[:, :, -1:].clone()
                _cat(out_plane * (1 + t), run),  # cat([cache[:, :, -1:], x], time)
            ]

        ops += _chunked(frames, cache)
        children.append(
            _causal_conv3d(
                "time_conv",
                run,
                dim,
                dim,
                kernel=(3, 1, 1),
                stride=(2, 1, 1),
                frames=ChunkFrames(None, frames.later + 1),
                scale=out_scale,
            )
        )
    return Module(
        name=name,
        class_name="Resample",
        stage=STAGE,
        params={"dim": dim, "mode": mode},
        children=tuple(children),
        ops=tuple(ops),
    )


def _upsample(
    name: str,
    run: _Run,
    dim: int,
    frames: ChunkFrames,
    scale: int,
    *,
    time: bool,
    out_dim: int | None = None,
) -> Module:
    """``Resample`` in mode ``upsample2d``/``upsample3d``: in 3-D first a (3, 1, 1) causal conv to
    ``2·dim`` channels whose halves become twice the frames (skipped in the first chunk); then per
    frame nearest-exact ×2 upsampling and a 3×3 ``Conv2d`` to ``out_dim`` channels (``dim // 2`` in
    Wan2.1's VAE; the Wan2.2 VAE keeps ``dim``).
    """
    b = run.samples
    height, width = _plane(scale)
    out_scale = scale * 2
    out_height, out_width = _plane(out_scale)
    children: list[Module | Repeated] = []
    ops: list[OpCall] = []
    mode = "upsample2d"
    resampled = frames
    if time:
        mode = "upsample3d"
        plane = b * dim * height * width

        def cache(t: Size, phase: int) -> list[OpCall]:
            if phase == 0:
                return []  # feat_cache = 'Rep'
            kept = min(t, CACHE_T)
            ops = [_copy(plane * kept, run)]  # cache_x = x[:, :, -CACHE_T:].clone()
            if t < CACHE_T and phase == 1:
                # cat([zeros_like(cache_x), cache_x]): the cache is still 'Rep'
                ops += [zeros_like(plane * kept, dtype=run.dtype), _cat(2 * plane * kept, run)]
            elif t < CACHE_T:
                ops.append(_cat(plane * (1 + t), run))  # cat([cache[:, :, -1:], cache_x])
            # stack the two dim-channel halves:[b, dim, t, 2, h, w]
            return [*ops, _copy(2 * plane * t, run)]

        ops = _phased(frames, cache)
        children.append(
            _causal_conv3d(
                "time_conv",
                run,
                dim,
                2 * dim,
                kernel=(3, 1, 1),
                padding=(1, 0, 0),
                frames=ChunkFrames(None, frames.later),
                scale=scale,
            )
        )
        resampled = ChunkFrames(frames.first, 2 * frames.later)

    def upsample(t: Size, later: bool) -> list[OpCall]:
        # nearest-exact ×2: x:[b·t, dim, h, w] → [b·t, dim, 2h, 2w]; x.float(), .type_as(x): no-ops in fp32
        return [
            *_made_contiguous(run, dim, t, height, width),
            upsample_nearest_exact2d(
                b * t * dim * height * width, b * t * dim * out_height * out_width, dtype=run.dtype
            ),
        ]

    def fold(t: Size, later: bool) -> list[OpCall]:
        return _frames_folded(run, dim, t, height, width)

    ops += _chunked(resampled, fold)

    resample = _sequential(
        "resample",
        [
            _module(
                "0", "Upsample", _chunked(resampled, upsample), scale_factor=[2.0, 2.0], mode="nearest-exact"
            ),
            _conv2d(
                "1",
                run,
                dim,
                dim // 2 if out_dim is None else out_dim,
                kernel=3,
                padding=1,
                frames=resampled,
                in_size=(out_height, out_width),
                out_size=(out_height, out_width),
            ),
        ],
    )
    return Module(
        name=name,
        class_name="Resample",
        stage=STAGE,
        params={"dim": dim, "mode": mode},
        children=(resample, *children),
        ops=tuple(ops),
    )


def _middle(run: _Run, dim: int, frames: ChunkFrames, scale: int) -> Module:
    return _sequential(
        "middle",
        [
            _residual_block("0", run, dim, dim, frames, scale),
            _attention_block("1", run, dim, frames, scale),
            _residual_block("2", run, dim, dim, frames, scale),
        ],
    )


def _head(run: _Run, dim: int, c_out: int, frames: ChunkFrames, scale: int) -> Module:
    """``head``: RMS norm, SiLU, causal 3×3×3 conv to ``c_out`` channels (both VAEs)."""
    return _sequential(
        "head",
        [
            _rms_norm("0", run, dim, frames, scale, images=False),
            _silu("1", run, dim, frames, scale),
            _causal_conv3d("2", run, dim, c_out, kernel=3, padding=1, frames=frames, scale=scale),
        ],
    )


# ─── encoder and decoder ────────────────────────────────────────────────────────────────────────


def _encoder(config: WanVAEConfig, run: _Run) -> Module:
    """``Encoder3d`` over one chunked encode: chunk 0 is frame 0, each later chunk 4 frames."""
    dims = [config.dim * m for m in (1, *config.dim_mult)]
    frames = ChunkFrames(1, VAE_TEMPORAL_STRIDE)
    scale = VAE_SPATIAL_STRIDE
    attention_scale = 1.0
    top_frames = frames
    conv1 = _causal_conv3d(
        "conv1", run, VIDEO_CHANNELS, dims[0], kernel=3, padding=1, frames=frames, scale=scale
    )
    blocks: list[Module | Repeated] = []
    last = len(config.dim_mult) - 1
    for level, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
        for _ in range(config.num_res_blocks):
            blocks.append(_residual_block(str(len(blocks)), run, in_dim, out_dim, frames, scale))
            if attention_scale in config.attn_scales:
                blocks.append(_attention_block(str(len(blocks)), run, out_dim, frames, scale))
            in_dim = out_dim
        if level != last:
            time = config.temperal_downsample[level]
            blocks.append(_downsample(str(len(blocks)), run, out_dim, frames, scale, time=time))
            scale //= 2
            attention_scale /= 2.0
            if time:
                # cat(1 cached frame, t frames) through a kernel of 3 with stride 2
                later = int(conv_output_size(frames.later + 1, 3, stride=2))
                frames = ChunkFrames(frames.first, later)
    out_dim = dims[-1]
    return Module(
        name="encoder",
        class_name="Encoder3d",
        stage=STAGE,
        params={**config.params(), "z_dim": 2 * config.z_dim},
        children=(
            conv1,
            _sequential("downsamples", blocks),
            _middle(run, out_dim, frames, scale),
            _head(run, out_dim, 2 * config.z_dim, frames, scale),
        ),
        ops=(
            *_cache_update(run, VIDEO_CHANNELS, top_frames, VAE_SPATIAL_STRIDE),  # before conv1
            *_cache_update(run, out_dim, frames, scale),  # before head.2
        ),
    )


def _decoder(config: WanVAEConfig, run: _Run) -> Module:
    """``Decoder3d`` over one chunked decode: one latent frame per chunk."""
    dims = [config.dim * m for m in (config.dim_mult[-1], *reversed(config.dim_mult))]
    frames = ChunkFrames(1, 1)
    scale = 1
    attention_scale = 1.0 / 2 ** (len(config.dim_mult) - 2)
    temperal_upsample = tuple(reversed(config.temperal_downsample))
    conv1 = _causal_conv3d(
        "conv1", run, config.z_dim, dims[0], kernel=3, padding=1, frames=frames, scale=scale
    )
    middle = _middle(run, dims[0], frames, scale)
    blocks: list[Module | Repeated] = []
    last = len(config.dim_mult) - 1
    for level, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
        if level > 0:
            in_dim //= 2  # the previous upsample's Conv2d halved the channels
        for _ in range(config.num_res_blocks + 1):
            blocks.append(_residual_block(str(len(blocks)), run, in_dim, out_dim, frames, scale))
            if attention_scale in config.attn_scales:
                blocks.append(_attention_block(str(len(blocks)), run, out_dim, frames, scale))
            in_dim = out_dim
        if level != last:
            time = temperal_upsample[level]
            blocks.append(_upsample(str(len(blocks)), run, out_dim, frames, scale, time=time))
            scale *= 2
            attention_scale *= 2.0
            if time:
                frames = ChunkFrames(frames.first, 2 * frames.later)
    out_dim = dims[-1]
    return Module(
        name="decoder",
        class_name="Decoder3d",
        stage=STAGE,
        params={**config.params(), "temperal_upsample": list(temperal_upsample)},
        children=(
            conv1,
            middle,
            _sequential("upsamples", blocks),
            _head(run, out_dim, VIDEO_CHANNELS, frames, scale),
        ),
        ops=(
            *_cache_update(run, config.z_dim, ChunkFrames(1, 1), 1),  # before conv1
            *_cache_update(run, out_dim, frames, scale),  # before head.2
        ),
    )


def decoded_frames(config: WanVAEConfig = WAN_VAE) -> ChunkFrames:
    """Video frames one decode chunk gives: 1 in the first chunk, 4 in each later one."""
    frames = ChunkFrames(1, 1)
    for time in reversed(config.temperal_downsample):
        if time:
            frames = ChunkFrames(frames.first, 2 * frames.later)
    return frames


def _appended(frames: ChunkFrames, plane: sympy.Expr, run: _Run) -> OpCall:
    """``out = torch.cat([out, out_], 2)`` after every later chunk: chunk ``i`` reads and writes
    ``first + i·later`` frames, so ``n·first + later·n(n + 1)/2`` frames over ``n`` later chunks.
    """
    n = later_chunks()
    return _cat(plane * (n * frames.first + frames.later * n * (n + 1) / 2), run)


def _encode_ops(z_dim: int, run: _Run, *, posterior: bool) -> list[OpCall]:
    """The encode outside its modules: concatenate the chunks' outputs, then normalise the mean.

    The official ``WanVAE_.encode`` splits ``mu, log_var`` (views) and computes
    ``(mu − mean)·(1/std)`` (``wan/modules/vae.py`` of Wan-Video/Wan2.1 @ f1f7c88, lines 535–541).
    diffusers' ``AutoencoderKLWan.encode`` wraps the output in a ``DiagonalGaussianDistribution``
    (``diffusers/models/autoencoders/vae.py``: ``logvar.clamp(−30, 20)``, ``exp(0.5·logvar)``,
    ``exp(logvar)``, with ``posterior``) whose mode (the mean, a view) the pipeline normalises as
    ``(mean − latents_mean)·latents_std`` (``WanImageToVideoPipeline.prepare_latents``).
    """
    h, w = latent_height(), latent_width()
    latent = run.samples * z_dim * latent_frames() * h * w
    ops = [_appended(ChunkFrames(1, 1), run.samples * 2 * z_dim * h * w, run)]
    if posterior:
        ops += [
            clamp(latent, dtype=run.dtype),  # logvar.clamp(-30, 20)
            mul(latent, dtype=run.dtype, other_numel=0),  # 0.5·logvar
            exp(latent, dtype=run.dtype),  # std
            exp(latent, dtype=run.dtype),  # var
        ]
    return [
        *ops,
        sub(latent, dtype=run.dtype, other_numel=z_dim),  # mu − mean
        mul(latent, dtype=run.dtype, other_numel=z_dim),  # ·(1/std)
    ]


def _decode_ops(z_dim: int, channels: int, frames: ChunkFrames, run: _Run) -> list[OpCall]:
    """The decode outside its modules: un-normalise z (``z / (1/std) + mean``: the official
    ``WanVAE_.decode``, lines 549–553, and the diffusers pipelines before ``vae.decode``),
    concatenate the chunks' videos, clamp to [−1, 1] (diffusers ``torch.clamp``; the official
    ``WanVAE.decode``'s ``clamp_`` in place, line 663, moves the same bytes). The decoder gives
    ``channels`` channels at ``H × W``, ``frames`` frames per chunk.
    """
    h, w = latent_height(), latent_width()
    latent = run.samples * z_dim * latent_frames() * h * w
    height, width = _plane(VAE_SPATIAL_STRIDE)
    pixels = run.samples * channels * height * width
    video_frames = sympy.sympify(frames.first) + frames.later * later_chunks()
    return [
        div(latent, dtype=run.dtype, other_numel=z_dim),  # z / (1/std)
        add(latent, dtype=run.dtype, other_numel=z_dim),  # + mean
        _appended(frames, pixels, run),
        clamp(pixels * video_frames, dtype=run.dtype),  # clamp(-1, 1)
    ]


def _uses(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LlmPerfOptError(f"{name}: must be an integer ≥ 0, got {value!r}")
    return value


@functools.cache
def declare_vae(
    implementation: Implementation, *, encodes: int = 1, decodes: int = 1, config: WanVAEConfig = WAN_VAE
) -> Module:
    """The whole ``WanVAE_`` as ``implementation`` runs it, for ``encodes`` encodes and ``decodes``
    decodes of ``B`` videos of ``F`` frames at ``H × W`` per call of the root.

    ``encoder`` and ``conv1`` are called ``encodes`` times, ``conv2`` and ``decoder`` ``decodes``
    times (times ``B`` where the implementation runs the videos one at a time); a part called zero
    times does no work and still owns its weights. Ids are the official names under ``vae``.
    """
    encodes, decodes = _uses(encodes, "encodes"), _uses(decodes, "decodes")
    per_sample = implementation.vae_per_sample
    run = _Run(implementation.vae_dtype, sympy.Integer(1) if per_sample else B)
    repeats = B if per_sample else sympy.Integer(1)
    encode_calls, decode_calls = encodes * repeats, decodes * repeats
    whole_latent = ChunkFrames(latent_frames(), 0)
    z = config.z_dim
    children: list[Module | Repeated] = [
        evolve(_encoder(config, run), calls=encode_calls),
        evolve(
            _causal_conv3d("conv1", run, 2 * z, 2 * z, kernel=1, frames=whole_latent, scale=1),
            calls=encode_calls,
        ),
        evolve(
            _causal_conv3d("conv2", run, z, z, kernel=1, frames=whole_latent, scale=1), calls=decode_calls
        ),
        evolve(_decoder(config, run), calls=decode_calls),
    ]
    ops: list[OpCall] = []
    if encodes:
        posterior = implementation.vae_posterior
        ops += [_times(op, encode_calls) for op in _encode_ops(config.z_dim, run, posterior=posterior)]
    if decodes:
        decode = _decode_ops(config.z_dim, VIDEO_CHANNELS, decoded_frames(config), run)
        ops += [_times(op, decode_calls) for op in decode]
    return Module(
        name=STAGE,
        class_name="WanVAE_",
        stage=STAGE,
        params=config.params(),
        children=tuple(children),
        ops=tuple(ops),
    )
