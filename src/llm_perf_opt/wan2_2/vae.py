"""The Wan2.2 VAE (``Wan2_2_VAE`` / ``WanVAE_`` of ``wan/modules/vae2_2.py``), declared module by module.

Its own structure, on Wan2.1's building blocks where they are the same classes (``CausalConv3d``,
``RMS_norm``, ``ResidualBlock``, ``AttentionBlock``, the downsampling ``Resample``):

- the video is first *patchified*: each 2 × 2 pixel square becomes 12 channels (``patchify``), so the
  encoder starts at ``H/2 × W/2`` with 12 channels and the decoder ends there, ``unpatchify`` giving
  ``H × W`` back; with three ×2 levels the latent is ``H/16 × W/16`` (48 channels);
- encoder dim 160, ``dim_mult`` (1, 2, 4, 4), 2 residual blocks per level, time halved after levels 1
  and 2 (``temperal_downsample`` (False, True, True)); each level is a ``Down_ResidualBlock``: its
  residual blocks and ``Resample`` (``downsamples.i.downsamples.j``) plus an ``AvgDown3D`` shortcut of
  the level's input (a reshape and a mean: no FLOPs);
- decoder dim 256, 3 residual blocks per level, time doubled on the first two levels; each level is an
  ``Up_ResidualBlock``: residual blocks and an upsampling ``Resample`` whose ``Conv2d`` keeps its
  channels (Wan2.1's halves them), plus a ``DupUp3D`` shortcut (``repeat_interleave``: no FLOPs);
- chunked as Wan2.1's: the encoder sees frame 0, then 4 frames per chunk; the decoder one latent frame
  per chunk, its first chunk skipping the time convolutions.

The blocks are declared with Wan2.1's building blocks, whose planes are multiples of ``H/8 × W/8``; the
Wan2.2 latent is ``H/16 × W/16``, so the whole declaration is written for ``(H/2, W/2)`` and then
``H → H/2, W → W/2`` is substituted in every expression (:func:`_at_half_resolution`). FLOPs count
every convolution and attention exactly as ``FlopCounterMode``; bytes are the eager ops' (the
shortcuts', ``patchify``'s and ``unpatchify``'s included), equal to diffusers' id by id (docs/vae.md).
"""

from __future__ import annotations

import functools
import itertools
from typing import Final

import attrs
import sympy
from attrs import frozen

from llm_perf_opt.symbolic.module import Module, Repeated
from llm_perf_opt.symbolic.primitives import (
    OpCall,
    Size,
    add,
    clone,
    constant_pad,
    conv_output_size,
    mean,
    repeat_interleave,
)
from llm_perf_opt.symbolic.symbols import B, F, H, W
from llm_perf_opt.wan2_1.geometry import latent_frames
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.vace import _substituted, _substituted_cost
from llm_perf_opt.wan2_1.vae import (
    ChunkFrames,
    _attention_block,
    _cache_update,
    _causal_conv3d,
    _chunked,
    _copy,
    _decode_ops,
    _downsample,
    _encode_ops,
    _head,
    _module,
    _plane,
    _residual_block,
    _Run,
    _sequential,
    _times,
    _upsample,
    _uses,
    later_chunks,
)

__all__ = ["WAN2_2_VAE", "Wan22VAEConfig", "declare_vae"]

STAGE: Final = "vae"
PATCH: Final = 2
"""``patchify(x, patch_size=2)``: 2 × 2 pixels → 4 × 3 = 12 channels."""
PATCHED_CHANNELS: Final = 3 * PATCH * PATCH
TOP_SCALE: Final = 8
"""The patchified video's plane, in latents (``H/2 = 8 · H/16``)."""


@frozen(kw_only=True)
class Wan22VAEConfig:
    """The constructor arguments of the Wan2.2 ``WanVAE_`` (``Wan2_2_VAE`` defaults)."""

    dim: int = 160
    dec_dim: int = 256
    z_dim: int = 48
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    temperal_downsample: tuple[bool, ...] = (False, True, True)

    def params(self) -> dict[str, object]:
        """The JSON-able constructor parameters."""
        return {
            "dim": self.dim,
            "dec_dim": self.dec_dim,
            "z_dim": self.z_dim,
            "dim_mult": list(self.dim_mult),
            "num_res_blocks": self.num_res_blocks,
            "temperal_downsample": list(self.temperal_downsample),
        }


WAN2_2_VAE: Final = Wan22VAEConfig()
"""``Wan2_2_VAE(z_dim=48, c_dim=160, dim_mult=[1, 2, 4, 4], temperal_downsample=[False, True, True])``."""


def _copy_at(run: _Run, channels: int, frames: ChunkFrames, scale: int) -> list[OpCall]:
    """One copy of a ``channels``-channel tensor per chunk (``x.clone()``, a reshape made contiguous)."""
    height, width = _plane(scale)

    def chunk(t: Size, later: bool) -> list[OpCall]:
        return [_copy(run.samples * channels * t * height * width, run)]

    return _chunked(frames, chunk)


def _avg_down(
    run: _Run, in_dim: int, out_dim: int, frames: ChunkFrames, scale: int, factor_t: int, factor_s: int
) -> list[OpCall]:
    """``AvgDown3D`` (diffusers ``autoencoder_kl_wan.py``; the official ``vae2_2.py`` is the same) per
    chunk of ``t`` frames: ``F.pad`` of ``(factor_t − t % factor_t) % factor_t`` frames in front (a ``clone``
    when it pads none), ``.permute(…).contiguous()`` of the regrouped tensor (a copy unless every
    factor is 1, when the permutation only moves size-1 dimensions), and ``.mean`` over each group of
    ``in_dim·factor/out_dim`` channels."""
    height, width = _plane(scale)
    factor = factor_t * factor_s * factor_s
    group = in_dim * factor // out_dim

    def chunk(t: Size, later: bool) -> list[OpCall]:
        padded_t = t + (factor_t - t % factor_t) % factor_t
        numel = run.samples * in_dim * height * width
        ops = constant_pad(numel * t, numel * padded_t, dtype=run.dtype, fills=padded_t != t)
        if factor > 1:
            ops.append(clone(numel * padded_t, dtype=run.dtype))
        return [*ops, mean(numel * padded_t / group, group, dtype=run.dtype)]

    return _chunked(frames, chunk)


def _dup_up(
    run: _Run, in_dim: int, out_dim: int, frames: ChunkFrames, scale: int, factor_t: int, factor_s: int
) -> list[OpCall]:
    """``DupUp3D`` per chunk of ``t`` input frames: ``x.repeat_interleave(out_dim·factor/in_dim, 1)``
    then ``.permute(…).contiguous()`` of the repeated tensor; the first chunk's ``x[:, :, factor_t − 1:]``
    is a view."""
    height, width = _plane(scale)
    repeats = out_dim * factor_t * factor_s * factor_s // in_dim

    def chunk(t: Size, later: bool) -> list[OpCall]:
        numel = run.samples * in_dim * t * height * width
        return [
            repeat_interleave(numel, repeats, dtype=run.dtype),
            clone(numel * repeats, dtype=run.dtype),
        ]

    return _chunked(frames, chunk)


def _add_at(run: _Run, channels: int, frames: ChunkFrames, scale: int) -> list[OpCall]:
    height, width = _plane(scale)

    def chunk(t: Size, later: bool) -> list[OpCall]:
        return [add(run.samples * channels * t * height * width, dtype=run.dtype)]

    return _chunked(frames, chunk)


def _encoder(config: Wan22VAEConfig, run: _Run) -> Module:
    """``Encoder3d`` over one chunked encode of the patchified video."""
    dims = [config.dim * m for m in (1, *config.dim_mult)]
    frames = ChunkFrames(1, 4)
    top_frames = frames
    scale = TOP_SCALE
    conv1 = _causal_conv3d(
        "conv1", run, PATCHED_CHANNELS, dims[0], kernel=3, padding=1, frames=frames, scale=scale
    )
    levels: list[Module | Repeated] = []
    last = len(config.dim_mult) - 1
    for level, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
        level_frames, level_scale, level_in = frames, scale, in_dim
        blocks: list[Module | Repeated] = []
        for _ in range(config.num_res_blocks):
            blocks.append(_residual_block(str(len(blocks)), run, in_dim, out_dim, frames, scale))
            in_dim = out_dim
        down = level != last
        time = down and config.temperal_downsample[level]
        factor_t, factor_s = (2 if time else 1), (2 if down else 1)
        if down:
            blocks.append(_downsample(str(len(blocks)), run, out_dim, frames, scale, time=time))
            scale //= 2
            if time:
                frames = ChunkFrames(frames.first, int(conv_output_size(frames.later + 1, 3, stride=2)))
        levels.append(
            Module(
                name=str(level),
                class_name="Down_ResidualBlock",
                stage=STAGE,
                params={
                    "in_dim": level_in,
                    "out_dim": out_dim,
                    "mult": config.num_res_blocks,
                    "down_flag": down,
                },
                children=(
                    _module(
                        "avg_shortcut",
                        "AvgDown3D",
                        _avg_down(
                            run,
                            level_in,
                            out_dim,
                            level_frames,
                            level_scale,
                            2 if time else 1,
                            2 if down else 1,
                        ),
                        factor_t=factor_t,
                        factor_s=factor_s,
                    ),
                    _sequential("downsamples", blocks),
                ),
                ops=(
                    *_copy_at(run, level_in, level_frames, level_scale),  # x_copy = x.clone()
                    *_add_at(run, out_dim, frames, scale),  # x + avg_shortcut(x_copy)
                ),
            )
        )
    out_dim = dims[-1]
    middle = _sequential(
        "middle",
        [
            _residual_block("0", run, out_dim, out_dim, frames, scale),
            _attention_block("1", run, out_dim, frames, scale),
            _residual_block("2", run, out_dim, out_dim, frames, scale),
        ],
    )
    head = _head(run, out_dim, 2 * config.z_dim, frames, scale)
    return Module(
        name="encoder",
        class_name="Encoder3d",
        stage=STAGE,
        params={"dim": config.dim, "z_dim": 2 * config.z_dim, "dim_mult": list(config.dim_mult)},
        children=(conv1, _sequential("downsamples", levels), middle, head),
        ops=(
            *_cache_update(run, PATCHED_CHANNELS, top_frames, TOP_SCALE),  # before conv1
            *_cache_update(run, out_dim, frames, scale),  # before head.2
        ),
    )


def _decoder(config: Wan22VAEConfig, run: _Run) -> Module:
    """``Decoder3d`` over one chunked decode: one latent frame per chunk."""
    dims = [config.dec_dim * m for m in (config.dim_mult[-1], *reversed(config.dim_mult))]
    frames = ChunkFrames(1, 1)
    scale = 1
    temperal_upsample = tuple(reversed(config.temperal_downsample))
    conv1 = _causal_conv3d(
        "conv1", run, config.z_dim, dims[0], kernel=3, padding=1, frames=frames, scale=scale
    )
    middle = _sequential(
        "middle",
        [
            _residual_block("0", run, dims[0], dims[0], frames, scale),
            _attention_block("1", run, dims[0], frames, scale),
            _residual_block("2", run, dims[0], dims[0], frames, scale),
        ],
    )
    levels: list[Module | Repeated] = []
    last = len(config.dim_mult) - 1
    for level, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
        level_frames, level_scale, level_in = frames, scale, in_dim
        blocks: list[Module | Repeated] = []
        for _ in range(config.num_res_blocks + 1):
            blocks.append(_residual_block(str(len(blocks)), run, in_dim, out_dim, frames, scale))
            in_dim = out_dim
        up = level != last
        time = up and temperal_upsample[level]
        children: list[Module | Repeated] = []
        if up:
            blocks.append(
                _upsample(str(len(blocks)), run, out_dim, frames, scale, time=time, out_dim=out_dim)
            )
            scale *= 2
            if time:
                frames = ChunkFrames(frames.first, 2 * frames.later)
            children.append(
                _module(
                    "avg_shortcut",
                    "DupUp3D",
                    _dup_up(run, level_in, out_dim, level_frames, level_scale, 2 if time else 1, 2),
                    factor_t=2 if time else 1,
                    factor_s=2,
                )
            )
        children.append(_sequential("upsamples", blocks))
        ops: list[OpCall] = list(_copy_at(run, level_in, level_frames, level_scale))  # x.clone()
        if up:
            ops += _add_at(run, out_dim, frames, scale)
        levels.append(
            Module(
                name=str(level),
                class_name="Up_ResidualBlock",
                stage=STAGE,
                params={
                    "in_dim": level_in,
                    "out_dim": out_dim,
                    "mult": config.num_res_blocks + 1,
                    "up_flag": up,
                },
                children=tuple(children),
                ops=tuple(ops),
            )
        )
    out_dim = dims[-1]
    return Module(
        name="decoder",
        class_name="Decoder3d",
        stage=STAGE,
        params={"dim": config.dec_dim, "z_dim": config.z_dim, "temperal_upsample": list(temperal_upsample)},
        children=(
            conv1,
            middle,
            _sequential("upsamples", levels),
            _head(run, out_dim, PATCHED_CHANNELS, frames, scale),
        ),
        ops=(
            *_cache_update(run, config.z_dim, ChunkFrames(1, 1), 1),  # before conv1
            *_cache_update(run, out_dim, frames, scale),  # before head.2
        ),
    )


def _at_half_resolution(module: Module) -> Module:
    """``module`` declared on Wan2.1's ``H/8`` planes, moved to Wan2.2's ``H/16``: ``H → H/2, W → W/2``."""
    result = _substituted(module, {H: H / PATCH, W: W / PATCH})
    assert isinstance(result, Module)
    return result


@functools.cache
def declare_vae(
    implementation: Implementation,
    *,
    encodes: int = 1,
    decodes: int = 1,
    encode_image: bool = False,
    config: Wan22VAEConfig = WAN2_2_VAE,
) -> Module:
    """The whole Wan2.2 ``WanVAE_`` as ``implementation`` runs it, for ``encodes`` encodes and
    ``decodes`` decodes of ``B`` videos of ``F`` frames at ``H × W`` per call of the root (ids under
    ``vae``, the official names). With ``encode_image`` each encode is of one frame (TI2V-5B's input
    image, ``F → 1`` in the encoder and ``conv1``), the decodes still of ``F`` frames."""
    encodes, decodes = _uses(encodes, "encodes"), _uses(decodes, "decodes")
    per_sample = implementation.vae_per_sample
    run = _Run(implementation.vae_dtype, sympy.Integer(1) if per_sample else B)
    repeats = B if per_sample else sympy.Integer(1)
    encode_calls, decode_calls = encodes * repeats, decodes * repeats
    whole_latent = ChunkFrames(latent_frames(), 0)
    z = config.z_dim
    children: list[Module | Repeated] = [
        attrs.evolve(_encoder(config, run), calls=encode_calls),
        attrs.evolve(
            _causal_conv3d("conv1", run, 2 * z, 2 * z, kernel=1, frames=whole_latent, scale=1),
            calls=encode_calls,
        ),
        attrs.evolve(
            _causal_conv3d("conv2", run, z, z, kernel=1, frames=whole_latent, scale=1), calls=decode_calls
        ),
        attrs.evolve(_decoder(config, run), calls=decode_calls),
    ]
    video = run.samples * PATCHED_CHANNELS * _plane(TOP_SCALE)[0] * _plane(TOP_SCALE)[1]
    encode: list[OpCall] = [
        _copy(video * F, run),  # patchify: a permuted copy of the whole video
        *_encode_ops(z, run, posterior=implementation.vae_posterior),
    ]
    if encode_image:
        encode = [attrs.evolve(op, cost=_substituted_cost(op.cost, {F: sympy.Integer(1)})) for op in encode]
        children[:2] = [_substituted(child, {F: sympy.Integer(1)}) for child in children[:2]]
    decoded = ChunkFrames(1, 4)
    decode = [
        *_decode_ops(z, PATCHED_CHANNELS, decoded, run),
        _copy(video * (decoded.first + decoded.later * later_chunks()), run),  # unpatchify
    ]
    ops: list[OpCall] = []
    if encodes:
        ops += [_times(op, encode_calls) for op in encode]
    if decodes:
        ops += [_times(op, decode_calls) for op in decode]
    root = Module(
        name=STAGE,
        class_name="WanVAE_",
        stage=STAGE,
        params=config.params(),
        children=tuple(children),
        ops=tuple(ops),
    )
    return _at_half_resolution(root)
